package sdk_test

import (
	"io"
	"log/slog"
	"os"
	"testing"
)

// TestMain keeps the Verifiers of the tests, which log through slog.Default
// unless told otherwise, out of the test output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
