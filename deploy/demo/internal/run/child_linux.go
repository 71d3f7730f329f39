package run

import (
	"os/exec"
	"runtime"
	"syscall"
)

// start starts cmd so that it can never outlive this process: the kernel
// sends it SIGKILL when the thread that created it dies (Pdeathsig), even
// when the runner itself is killed with SIGKILL. Pdeathsig fires when the
// creating OS thread exits, so the goroutine that starts the child locks its
// thread and keeps it until the child has exited (as deploy/devstack does).
// Setpgid keeps a terminal's Ctrl-C away from the children: the runner gets
// it and stops them in order.
func start(cmd *exec.Cmd) (exited <-chan error, err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	done := make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
