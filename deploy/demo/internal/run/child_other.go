//go:build !linux

package run

import (
	"os/exec"
	"syscall"
)

// start starts cmd. Outside Linux there is no Pdeathsig: a runner killed
// with SIGKILL can leave its children behind.
func start(cmd *exec.Cmd) (exited <-chan error, err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}
