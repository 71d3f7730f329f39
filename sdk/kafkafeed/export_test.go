package kafkafeed

import "time"

// SetDiscoverEvery shortens the partition discovery interval for a test.
func SetDiscoverEvery(d time.Duration) (restore func()) {
	old := discoverEvery
	discoverEvery = d
	return func() { discoverEvery = old }
}
