// Command probe is a container health check for images without a shell or
// curl (distroless): `probe URL` exits 0 when GET URL answers 200 within 3 s,
// 1 otherwise. The Dockerfiles copy it next to the issuer, verifier and demo.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: probe URL")
		os.Exit(2)
	}
	os.Exit(probe(os.Args[1]))
}

func probe(url string) int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "probe:", url, resp.Status)
		return 1
	}
	return 0
}
