# Weft's build. `make demo` runs the mesh on the built-in lab cluster;
# `make test` runs every suite CI runs (unit, real-kernel, fuzz smoke, e2e).
SHELL := /usr/bin/env bash -o pipefail
GO ?= go
OUT := _output
BIN := $(OUT)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# grpcnotrace drops grpc's /debug/requests pages (x/net/trace), which Weft
# never serves and which keep 4.7 MB of otherwise dead code linked.
TAGS := grpcnotrace
LDFLAGS := -s -w -X github.com/weftmesh/weft/pkg/version.Version=$(VERSION) -X github.com/weftmesh/weft/pkg/version.Commit=$(COMMIT)
FUZZTIME ?= 5s

.PHONY: all build lab-build manifests images generate lint test test-unit fuzz-smoke fuzz e2e bench bench-quick bench-micro soak demo demo-down clean

all: build

## build: every binary into _output/bin, statically linked, version stamped
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## lab-build: the lab's pinned Kubernetes, etcd, CoreDNS and CNI plugin binaries into
## _output/k8s (cold: 10-35 minutes on 2 cores; then a no-op until e2e/lab/k8s changes)
lab-build: build
	$(BIN)/weft-lab build

## manifests: assemble the CRDs from the pinned istio.io/api and gateway-api modules
## into manifests/base/crds/generated (needed before kubectl apply -k manifests/)
manifests: build
	$(BIN)/weft-build crds

## images: OCI image tarballs weft/<binary>:$(VERSION) into _output/images
images: build
	$(BIN)/weft-build images --tag $(VERSION) --revision $(COMMIT) --skip-missing

## generate: regenerate the Go code of the wire protos
generate:
	$(GO) generate ./pkg/api

## lint: formatting, vet, golangci-lint, layout rules, and generated code up to date
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) tool golangci-lint run ./...
	$(GO) test -count=1 ./pkg/layout/
	$(MAKE) generate
	@git diff --exit-code -- pkg/api || { echo "generated code is stale: run make generate and commit"; exit 1; }

## test: the whole suite CI runs
test: test-unit fuzz-smoke e2e

## test-unit: unit, component and real-kernel tests (real-kernel ones need root);
## ztunnel's memory tests (50,000 connections; growth at 1,000 rps) run
## without -race (its goroutine cap and shadow memory)
test-unit:
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '^(TestMemory50k|TestLoadMemory)$$' ./ztunnel/proxy

## fuzz-smoke: every fuzz target for $(FUZZTIME); `make fuzz FUZZTIME=5m` for longer runs.
## A failing input fails it; the engine's own "context deadline exceeded" on a
## loaded machine (no input: an input still running when the time ran out)
## gets up to two more runs.
fuzz-smoke fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./_output'); do \
	  dir=$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
	    for attempt in 1 2 3; do \
	      echo "fuzz $$dir $$t ($(FUZZTIME))"; \
	      if out=$$($(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) ./$$dir 2>&1); then \
	        echo "$$out" | tail -n 3; break; \
	      fi; \
	      echo "$$out"; \
	      case "$$out" in \
	        *"Failing input written"*) exit 1 ;; \
	        *"context deadline exceeded"*) \
	          if [ $$attempt -eq 3 ]; then exit 1; fi; \
	          echo "fuzz $$dir $$t: the fuzzing engine itself timed out (a busy machine), no failing input; once more" ;; \
	        *) exit 1 ;; \
	      esac; \
	    done; \
	  done; \
	done

## e2e: the end-to-end suites on the lab cluster (root)
e2e: build lab-build manifests
	$(GO) test -tags e2e -count=1 -p 1 -timeout 60m ./e2e/...

## soak: checksummed traffic through the mesh for $(SOAK) (default 30m) while
## ztunnel, istiod-lite, the CNI agent, pods and policies fail at random (root)
SOAK ?= 30m
soak: build lab-build manifests
	WEFT_SOAK_DURATION=$(SOAK) $(GO) test -tags e2e -count=1 -p 1 -timeout 90m -run '^TestChaosSoak$$' -v ./e2e/mesh

## bench: the whole-mesh report (e2e/bench: a lab with Weft installed; latency,
## throughput, connection rate, data-plane and control-plane cost, each beside its
## baseline; writes a table, _output/bench/report.json and docs/performance.md;
## measured 50 minutes), after the micro-benchmarks (about 4 more; root,
## nginx-light for the nginx rows)
bench: bench-micro lab-build manifests
	$(GO) run ./cmd/weft-bench

## bench-quick: the whole-mesh report in quick mode (under 5 minutes in all, lab
## start and teardown included; measured 4 minutes)
bench-quick: build lab-build manifests
	$(GO) run ./cmd/weft-bench --quick

## bench-micro: the micro-benchmarks, each beside its baseline (root for the data path)
bench-micro: build
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./pkg/... ./istiod-lite/ca ./istiod-lite/l7 ./waypoint/...
	$(GO) test -run='^TestBenchReport$$' -v -count=1 ./pkg/hbone -args -hbone.report
	$(GO) test -run='^$$' -bench=DataPath -benchtime=1x -count=1 ./ztunnel/proxy
	$(GO) test -run='^$$' -bench=Linger -count=1 ./ztunnel/proxy
	$(GO) test -run='^$$' -bench=Transports -benchtime=20x -count=1 ./ztunnel/tunnel
	$(GO) test -run='^$$' -bench=UDPRoundTrip -benchtime=2000x -count=1 ./ztunnel/udp
	$(GO) test -run='^$$' -bench='WaypointHop|WaypointCPU' -benchtime=3000x -count=1 ./waypoint/server
	$(GO) test -run='^$$' -bench=KernelInPodApply -benchtime=10x -count=1 ./cni/iptables

## demo: build, start a 2-node lab, install Weft from manifests/, enroll the
## sample namespace and show an mTLS request (root; about a minute when built)
demo: build lab-build
	bash e2e/demo.sh

## demo-down: remove everything make demo started
demo-down:
	@if [ -x $(BIN)/weft-lab ]; then $(BIN)/weft-lab down --name $${WEFT_LAB:-weft}; \
	  else echo "nothing to remove: $(BIN)/weft-lab is not built"; fi

## clean: remove build output
clean:
	rm -rf $(OUT)
