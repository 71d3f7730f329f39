package keys

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// PrintList writes keys as a table for `issuer keys list`.
func PrintList(w io.Writer, keys []KeyInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRES\tLEAVES JWKS")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State,
			stamp(&k.CreatedAt), stamp(&k.NotBefore), stamp(k.RetireAt), stamp(k.ExpiresAt))
	}
	_ = tw.Flush()
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
