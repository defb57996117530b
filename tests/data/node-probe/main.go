// Command probe is the node tests' container image: a static HTTP server with no dependencies.
//
//	probe serve          print "probe ready", answer GET / with the pod's hostname, until SIGTERM
//	probe fail MESSAGE   print MESSAGE to stderr and the termination log, exit 3
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
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
