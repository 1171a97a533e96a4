module github.com/chatcore/chatcore/benchmarks/loadgen-go

go 1.24.0

require (
	github.com/coder/websocket v1.8.15
	golang.org/x/sys v0.38.0
)
