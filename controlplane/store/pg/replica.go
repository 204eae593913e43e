package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tockhq/tock/controlplane/store"
)

const replicaColumns = `id, address, last_seen, expires_at`

// RegisterReplica records or refreshes a replica's registration until now+ttl.
func (s *Store) RegisterReplica(ctx context.Context, replica store.Replica, ttl time.Duration) error {
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		_, err := tx.Exec(ctx, `INSERT INTO replicas (`+replicaColumns+`) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET address = excluded.address,
				last_seen = excluded.last_seen, expires_at = excluded.expires_at`,
			replica.ID, replica.Address, now, now.Add(ttl))
		return err
	})
	if err != nil {
		return fmt.Errorf("register replica %s: %w", replica.ID, interpretError(err))
	}
	return nil
}

// DeregisterReplica removes a replica's registration.
func (s *Store) DeregisterReplica(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx pgx.Tx, _ time.Time) error {
		_, err := tx.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("deregister replica %s: %w", id, interpretError(err))
	}
	return nil
}

// ListReplicas returns the replicas whose registration has not expired, by id.
func (s *Store) ListReplicas(ctx context.Context) ([]store.Replica, error) {
	replicas, err := query(ctx, s, scanReplica, `SELECT `+replicaColumns+` FROM replicas
		WHERE expires_at > now() ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", interpretError(err))
	}
	return replicas, nil
}

// scanReplica reads a row of replicaColumns.
func scanReplica(row pgx.Row) (store.Replica, error) {
	var (
		r                   store.Replica
		lastSeen, expiresAt pgtype.Timestamptz
	)
	if err := row.Scan(&r.ID, &r.Address, &lastSeen, &expiresAt); err != nil {
		return store.Replica{}, err
	}
	r.LastSeen, r.ExpiresAt = fromTS(lastSeen), fromTS(expiresAt)
	return r, nil
}
