// Package e2e holds end-to-end tests: they build cmd/pdp once, start real
// `pdp serve` processes sharing a real redis-server, and talk to them over
// gRPC as agents and operators would. Run them with
//
//	go test ./test/e2e/...
//
// redis-server must be on PATH (see internal/testutil/redisserver).
package e2e
