package worker

import (
	"sync"

	handlerv1 "github.com/tockhq/tock/proto/tock/handler/v1"
)

// maxDroppable is how many progress and log messages may wait on one stream before new ones
// are dropped. Results are never dropped.
const maxDroppable = 1024

// sendQueue holds the messages waiting for a stream's writer goroutine. Pushing never blocks,
// so handlers are never held up by a slow agent.
type sendQueue struct {
	mu        sync.Mutex // protects items and droppable
	items     []*handlerv1.ExecuteResponse
	droppable int // progress and log messages in items

	ready chan struct{} // receives a value when items becomes non-empty
}

func newSendQueue() *sendQueue {
	return &sendQueue{ready: make(chan struct{}, 1)}
}

// push queues a message that must be delivered, such as a result.
func (q *sendQueue) push(m *handlerv1.ExecuteResponse) {
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	q.signal()
}

// pushDroppable queues a progress or log message unless too many are already waiting.
func (q *sendQueue) pushDroppable(m *handlerv1.ExecuteResponse) {
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
func (q *sendQueue) take() []*handlerv1.ExecuteResponse {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	q.droppable = 0
	return items
}

func (q *sendQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
