package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tockhq/tock/controlplane/store"
)

// RegisterAgent records or refreshes an agent's registration until now+ttl. A refresh updates
// what the agent advertises and keeps the replica recorded by SetAgentSession.
func (s *Store) RegisterAgent(ctx context.Context, agent store.Agent, ttl time.Duration) error {
	err := s.inTx(ctx, func(tx pgx.Tx, now time.Time) error {
		agent.LastSeen, agent.ExpiresAt = now, now.Add(ttl)
		args, err := agentArgs(agent)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO agents (`+agentColumns+`)
			VALUES (`+params(1, len(args))+`)
			ON CONFLICT (id) DO UPDATE SET service = excluded.service, address = excluded.address,
				labels = excluded.labels, weight = excluded.weight, capacity = excluded.capacity,
				handlers = excluded.handlers, last_seen = excluded.last_seen,
				expires_at = excluded.expires_at`, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("register agent %s: %w", agent.ID, interpretError(err))
	}
	return nil
}

// DeregisterAgent removes an agent's registration.
func (s *Store) DeregisterAgent(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx pgx.Tx, _ time.Time) error {
		_, err := tx.Exec(ctx, `DELETE FROM agents WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("deregister agent %s: %w", id, interpretError(err))
	}
	return nil
}

// ListAgents returns the agents whose registration has not expired, by id.
func (s *Store) ListAgents(ctx context.Context) ([]store.Agent, error) {
	agents, err := query(ctx, s, scanAgent, `SELECT `+agentColumns+` FROM agents
		WHERE expires_at > now() ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", interpretError(err))
	}
	return agents, nil
}

// SetAgentSession records the replica holding a session with the agent. An agent without a
// registration is left alone.
func (s *Store) SetAgentSession(ctx context.Context, agentID, replica string) error {
	err := s.inTx(ctx, func(tx pgx.Tx, _ time.Time) error {
		_, err := tx.Exec(ctx, `UPDATE agents SET replica = $1 WHERE id = $2`, replica, agentID)
		return err
	})
	if err != nil {
		return fmt.Errorf("set session of agent %s: %w", agentID, interpretError(err))
	}
	return nil
}

// EndAgentSession clears the agent's replica when it is still this one.
func (s *Store) EndAgentSession(ctx context.Context, agentID, replica string) error {
	err := s.inTx(ctx, func(tx pgx.Tx, _ time.Time) error {
		_, err := tx.Exec(ctx, `UPDATE agents SET replica = '' WHERE id = $1 AND replica = $2`, agentID, replica)
		return err
	})
	if err != nil {
		return fmt.Errorf("end session of agent %s: %w", agentID, interpretError(err))
	}
	return nil
}
