module github.com/secretbroker/secretbroker

go 1.26.8
