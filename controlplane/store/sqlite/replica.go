package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tockhq/tock/controlplane/store"
)

const replicaColumns = `id, address, last_seen, expires_at`

// RegisterReplica records or refreshes a replica's registration until now+ttl.
func (s *Store) RegisterReplica(ctx context.Context, replica store.Replica, ttl time.Duration) error {
	err := s.inTx(ctx, func(tx *sql.Tx, now time.Time) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO replicas (`+replicaColumns+`) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET address = excluded.address,
				last_seen = excluded.last_seen, expires_at = excluded.expires_at`,
			replica.ID, replica.Address, micros(now), micros(now.Add(ttl)))
		return interpretError(err)
	})
	if err != nil {
		return fmt.Errorf("register replica %s: %w", replica.ID, err)
	}
	return nil
}

// DeregisterReplica removes a replica's registration.
func (s *Store) DeregisterReplica(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx, _ time.Time) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE id = ?`, id)
		return interpretError(err)
	})
	if err != nil {
		return fmt.Errorf("deregister replica %s: %w", id, err)
	}
	return nil
}

// ListReplicas returns the replicas whose registration has not expired, by id.
func (s *Store) ListReplicas(ctx context.Context) ([]store.Replica, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+replicaColumns+` FROM replicas
		WHERE expires_at > ? ORDER BY id`, s.now().UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", interpretError(err))
	}
	defer rows.Close()
	var replicas []store.Replica
	for rows.Next() {
		var (
			r                   store.Replica
			lastSeen, expiresAt sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.Address, &lastSeen, &expiresAt); err != nil {
			return nil, fmt.Errorf("list replicas: %w", err)
		}
		r.LastSeen, r.ExpiresAt = fromMicros(lastSeen), fromMicros(expiresAt)
		replicas = append(replicas, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list replicas: %w", interpretError(err))
	}
	return replicas, nil
}
