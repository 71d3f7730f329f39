package sdk_test

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// docPath is the sdk's guide, whose ```go blocks must compile.
const docPath = "../docs/sdk.md"

// regionMarker starts a line that opens a region ("// docs/sdk.md: quick
// start") or closes it ("// docs/sdk.md: end").
const regionMarker = "// docs/sdk.md: "

// TestDocSnippets keeps docs/sdk.md's Go snippets compiling: each ```go block
// must equal, line for line, a marked region of a _test.go file of this
// module (an example or a test, so it compiles, and runs when it can), and
// each marked region must be one of the doc's blocks. A region is the lines
// between "// docs/sdk.md: NAME" and "// docs/sdk.md: end", without its
// leading and trailing blank lines and its common leading indentation.
func TestDocSnippets(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if errors.Is(err, fs.ErrNotExist) {
		if _, werr := os.Stat("../go.work"); werr != nil {
			t.Skipf("%s: not in a jotguard checkout (no ../go.work): nothing to check", docPath)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := goBlocks(string(doc))
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	regions, err := markedRegions(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 || len(regions) == 0 {
		t.Fatalf("%d go blocks in %s, %d marked regions: the check checks nothing", len(blocks), docPath, len(regions))
	}
	used := make([]bool, len(regions))
	for _, b := range blocks {
		i := slices.IndexFunc(regions, func(r snippet) bool { return slices.Equal(r.lines, b.lines) })
		if i < 0 {
			t.Errorf("%s:%d: this go block is no marked region of a _test.go file%s", docPath, b.line, nearest(b, regions))
			continue
		}
		used[i] = true
	}
	for i, r := range regions {
		if !used[i] {
			t.Errorf("%s:%d: region %q is in no go block of %s", r.file, r.line, r.name, docPath)
		}
	}
}

// snippet is a doc block or a marked region: where it starts (its first
// line's number) and its lines.
type snippet struct {
	name, file string
	line       int
	lines      []string
}

// goBlocks returns the ```go blocks of a Markdown text.
func goBlocks(doc string) ([]snippet, error) {
	var blocks []snippet
	var cur *snippet
	for n, l := range strings.Split(doc, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(l) == "```go":
			cur = &snippet{line: n + 2}
		case cur != nil && strings.TrimSpace(l) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, l)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the go block is never closed", cur.line-1)
	}
	return blocks, nil
}

// markedRegions returns the regions of the _test.go files below dir.
func markedRegions(dir string) ([]snippet, error) {
	var regions []snippet
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != dir && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, "_test.go"):
			return nil
		}
		rs, err := fileRegions(path)
		regions = append(regions, rs...)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, r := range regions {
		if j := slices.IndexFunc(regions[:i], func(o snippet) bool { return o.name == r.name }); j >= 0 {
			return nil, fmt.Errorf("%s:%d: region %q is also at %s:%d", r.file, r.line, r.name, regions[j].file, regions[j].line)
		}
	}
	return regions, nil
}

// fileRegions returns the marked regions of one file.
func fileRegions(path string) ([]snippet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var regions []snippet
	var cur *snippet
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		name, marker := strings.CutPrefix(strings.TrimSpace(l), regionMarker)
		switch {
		case !marker && cur != nil:
			cur.lines = append(cur.lines, l)
		case !marker:
		case name == "end" && cur == nil:
			return nil, fmt.Errorf("%s:%d: %send closes no region", path, n, regionMarker)
		case name == "end":
			regions = append(regions, trimRegion(*cur))
			cur = nil
		case cur != nil:
			return nil, fmt.Errorf("%s:%d: region %q opens inside region %q (line %d)", path, n, name, cur.name, cur.line-1)
		default:
			cur = &snippet{name: name, file: path, line: n + 1}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: region %q is never closed (%send)", path, cur.line-1, cur.name, regionMarker)
	}
	return regions, sc.Err()
}

// trimRegion drops r's leading and trailing blank lines and the indentation
// its other lines share.
func trimRegion(r snippet) snippet {
	blank := func(l string) bool { return strings.TrimSpace(l) == "" }
	for len(r.lines) > 0 && blank(r.lines[0]) {
		r.lines, r.line = r.lines[1:], r.line+1
	}
	for len(r.lines) > 0 && blank(r.lines[len(r.lines)-1]) {
		r.lines = r.lines[:len(r.lines)-1]
	}
	var indent string // the longest whitespace prefix of every non-blank line
	first := true
	for _, l := range r.lines {
		if blank(l) {
			continue
		}
		lead := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			indent, first = lead, false
		}
		for !strings.HasPrefix(lead, indent) {
			indent = indent[:len(indent)-1]
		}
	}
	lines := make([]string, len(r.lines))
	for i, l := range r.lines {
		if !blank(l) {
			lines[i] = l[len(indent):]
		}
	}
	r.lines = lines
	return r
}

// nearest names the region that shares most lines with b, and the first line
// where they differ: what a reader needs to fix either.
func nearest(b snippet, regions []snippet) string {
	best, bestScore := -1, 0
	for i, r := range regions {
		score := 0
		for _, l := range b.lines {
			if strings.TrimSpace(l) != "" && slices.Contains(r.lines, l) {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return ""
	}
	r := regions[best]
	i := 0
	for i < len(b.lines) && i < len(r.lines) && b.lines[i] == r.lines[i] {
		i++
	}
	line := func(lines []string) string {
		if i < len(lines) {
			return fmt.Sprintf("%q", lines[i])
		}
		return "the end"
	}
	return fmt.Sprintf("; nearest: region %q at %s:%d, which first differs at line %d of the block:\n\tdoc:    %s\n\tregion: %s (%s:%d)",
		r.name, r.file, r.line, i+1, line(b.lines), line(r.lines), r.file, r.line+i)
}
