package stack

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// child is a server process owned by the stack.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startChild starts cmd (built by exec.Command, with its Env and output
// set as wanted) so that it can never outlive this process: the kernel
// sends it SIGKILL when its parent thread dies (Pdeathsig), even when this
// process is killed with SIGKILL. Pdeathsig fires when the creating OS
// thread exits, so the goroutine that starts the child locks its thread
// and keeps it until the child has exited.
func startChild(cmd *exec.Cmd) (*child, error) {
	c := &child{cmd: cmd, exited: make(chan struct{})}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true, // a terminal's Ctrl-C reaches us, and we stop it in order
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := c.cmd.Start(); err != nil {
			started <- err
			close(c.exited)
			return
		}
		started <- nil
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return c, nil
}

// stop asks the child to exit, then kills it if it has not within 5s.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

func lookRedisServer() (string, error) {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server is not on PATH: %w", err)
	}
	return p, nil
}
