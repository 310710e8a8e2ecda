package broker

import (
	"net/http"
	"os"
	"os/signal"
	"strconv"
)

func httpGet(url string) (*http.Response, error)     { return http.Get(url) }
func itoa(n int) string                              { return strconv.Itoa(n) }
func signalNotify(ch chan os.Signal, s ...os.Signal) { signal.Notify(ch, s...) }
