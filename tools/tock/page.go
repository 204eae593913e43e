package main

import (
	"context"
	"fmt"
)

// maxPageSize is the largest page the API serves.
const maxPageSize = 1000

// pageFunc fetches one page of at most size items after token; it returns the items and the
// token of the next page, empty on the last.
type pageFunc[T any] func(ctx context.Context, size int32, token string) (items []T, next string, err error)

// collectPages follows next-page tokens until the last page or until it holds limit items
// (limit 0 means all). It never asks for more than it still needs, so the token it returns
// continues exactly after the last item returned; it is empty when nothing is left.
func collectPages[T any](ctx context.Context, limit int, fetch pageFunc[T]) ([]T, string, error) {
	var (
		all   []T
		token string
	)
	for {
		size := maxPageSize
		if limit > 0 {
			size = min(limit-len(all), maxPageSize)
		}
		items, next, err := fetch(ctx, int32(size), token)
		if err != nil {
			return nil, "", err
		}
		if len(items) > size {
			items = items[:size]
		}
		all = append(all, items...)
		if next == "" || (limit > 0 && len(all) >= limit) {
			return all, next, nil
		}
		if next == token {
			return nil, "", fmt.Errorf("the server returned page token %q twice", next)
		}
		token = next
	}
}
