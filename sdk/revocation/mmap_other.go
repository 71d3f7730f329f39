//go:build !unix

package revocation

import "sync/atomic"

// mappedBytes stays 0: without unix, tables live on the Go heap.
var mappedBytes atomic.Int64

var mmapMin = 0

func allocSlots(n int) (s []slot, mapped bool) { return make([]slot, n), false }

func freeSlots([]slot, bool) {}
