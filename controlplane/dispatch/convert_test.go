package dispatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tockhq/tock/controlplane/store"
)

func TestAssignmentStartAndDeadline(t *testing.T) {
	t.Parallel()
	assigned := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name                string
		notBefore           time.Time
		wantStart           time.Time // zero: none
		wantDeadlineFromNow time.Duration
	}{
		{"due: starts at once", assigned.Add(-time.Second), time.Time{}, 30 * time.Second},
		{"due at assignment", assigned, time.Time{}, 30 * time.Second},
		{"assigned ahead: starts at its time", assigned.Add(700 * time.Millisecond), assigned.Add(700 * time.Millisecond), 30*time.Second + 700*time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := store.Execution{ID: "e", AssignedAt: assigned, NotBefore: tc.notBefore, Timeout: 30 * time.Second}
			a := assignmentToProto(&e, time.Minute)
			if tc.wantStart.IsZero() {
				require.Nil(t, a.GetStartTime())
			} else {
				require.True(t, a.GetStartTime().AsTime().Equal(tc.wantStart))
			}
			require.True(t, a.GetDeadline().AsTime().Equal(assigned.Add(tc.wantDeadlineFromNow)), "deadline %s", a.GetDeadline().AsTime())
		})
	}
}
