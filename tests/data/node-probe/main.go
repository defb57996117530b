// Command probe is the node tests' container image: a static HTTP server with no dependencies.
//
//	probe serve          print "probe ready", answer GET / with the pod's hostname, until SIGTERM
//	probe fail MESSAGE   print MESSAGE to stderr and the termination log, exit 3
//	probe fetch URL      GET URL (names resolve through the pod's DNS), print the body, exit 0
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "fetch" {
		os.Exit(fetch(os.Args[2]))
	}
	if len(os.Args) > 2 && os.Args[1] == "fail" {
		fmt.Fprintln(os.Stderr, os.Args[2])
		_ = os.WriteFile("/dev/termination-log", []byte(os.Args[2]), 0o644)
		os.Exit(3)
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "probe %s\n", host) })
	fmt.Println("probe ready")
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func fetch(url string) int {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		_ = os.WriteFile("/dev/termination-log", []byte(err.Error()), 0o644)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("fetched %d %s", resp.StatusCode, body)
	return 0
}
