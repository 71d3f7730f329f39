// Package buildinfo reports what a binary was built from: its module
// version, the VCS revision and time the Go toolchain recorded, and the Go
// version. jotguard's binaries print it for --version and export it as the
// jotguard_build_info metric; a service built with the sdk can do the same.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is what a binary was built from. Empty fields are unknown.
type Info struct {
	Version   string // the main module's version, "(devel)" for a local build, or what -ldflags set
	Revision  string // VCS revision (commit), with "-dirty" when the tree had changes
	Time      string // VCS commit time, RFC 3339
	GoVersion string
}

// Read returns the build information of the running binary. version, when
// not empty, wins over the module version: a release build sets it with
// -ldflags "-X main.version=v1.2.3".
func Read(version string) Info {
	i := Info{Version: version, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if i.Version == "" {
		i.Version = bi.Main.Version
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && i.Revision != "" {
		i.Revision += "-dirty"
	}
	return i
}

// String is the --version line of name: "issuer (devel) (commit 1a2b3c4,
// 2026-12-06T11:00:00Z) go1.26.8".
func (i Info) String() string {
	s := i.Version
	if s == "" {
		s = "unknown"
	}
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += fmt.Sprintf(" (commit %s, %s)", rev, i.Time)
	}
	return s + " " + i.GoVersion
}
