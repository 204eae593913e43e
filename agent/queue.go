package agent

import "sync"

// maxDroppable is how many progress and log messages may wait in one queue before new ones
// are dropped. Other messages are never dropped.
const maxDroppable = 1024

// queue holds messages for a stream's single writer goroutine (gRPC forbids concurrent Send).
// Pushing never blocks, so no lock holder ever waits on the network.
type queue[T any] struct {
	mu        sync.Mutex // protects items and droppable
	items     []T
	droppable int // progress and log messages in items

	ready chan struct{} // receives a value when items becomes non-empty
}

func newQueue[T any]() *queue[T] {
	return &queue[T]{ready: make(chan struct{}, 1)}
}

// push queues m.
func (q *queue[T]) push(m T) {
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	q.signal()
}

// pushOrMerge lets merge fold m's content into the newest queued message when there is one
// and merge returns true; otherwise m is queued. This batches results that become ready while
// the writer is busy into one message.
func (q *queue[T]) pushOrMerge(m T, merge func(last T) bool) {
	q.mu.Lock()
	if n := len(q.items); n == 0 || !merge(q.items[n-1]) {
		q.items = append(q.items, m)
	}
	q.mu.Unlock()
	q.signal()
}

// pushDroppable queues m unless too many droppable messages are already waiting.
func (q *queue[T]) pushDroppable(m T) {
	q.mu.Lock()
	if q.droppable >= maxDroppable {
		q.mu.Unlock()
		return
	}
	q.droppable++
	q.items = append(q.items, m)
	q.mu.Unlock()
	q.signal()
}

// take removes and returns every queued message, oldest first.
func (q *queue[T]) take() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	q.droppable = 0
	return items
}

func (q *queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
