//go:build !race

package kafkafeed_test

const raceEnabled = false
