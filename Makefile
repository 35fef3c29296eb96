GO ?= go
BIN := bin/corral
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/corral-dev/corral/version.Version=$(VERSION)
FUZZTIME ?= 40000x

.PHONY: build test unit fuzz proto bench lint clean lab

# seccomp: libcontainer installs containers' seccomp filters through
# libseccomp (libseccomp-dev, linked statically).
TAGS := seccomp
# The binary is static: it is also every container's init, bind-mounted into
# images that have no C library. Its segments start 1 MiB off the 2 MiB grid
# (the default is 0x400000): the kernel then cannot map a whole 2 MB
# page-cache folio of it at once, as a PMD or as a run of PTEs, and a process
# maps only the code it runs, 64 KB around each page (fault-around). On
# kernels with large folios (ext4 since 6.16) an aligned binary is mapped
# almost whole by every process that runs it (see the README's memory
# figures).
STATIC_FLAGS := -tags 'netgo osusergo $(TAGS)' -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static -Wl,-Ttext-segment=0x500000"'

build:
	CGO_ENABLED=1 $(GO) build $(STATIC_FLAGS) -o $(BIN) ./cmd/corral

# A 3-server + 3-agent cluster on this machine (needs root): see
# `bin/corral lab --help`; `bin/corral lab down --dir $(LAB_DIR)` removes it.
LAB_DIR ?= /var/lib/corral-lab
lab: build
	$(BIN) lab up --dir $(LAB_DIR)

# Every test: unit, state store, in-process clusters and real server
# processes (the binary under test is bin/corral), then a bounded fuzz run
# of the manifest decoder.
test: build
	CORRAL_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(TAGS)' -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

unit:
	$(GO) test -count=1 ./api/... ./cli/... ./raftstore/state/...

# Counts, not durations: Go 1.26's fuzz coordinator can fail a run at the
# -fuzztime deadline with a bare "context deadline exceeded" (go.dev/issue/75804,
# fixed in Go 1.27); a count has no deadline to race. Minimizing a new
# input is bounded too, so a crash surfaces within the run.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 500x ./api/

# Benchmarks: figures for the README (see "Performance" there).
bench: build
	CORRAL_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(TAGS)' -run '^$$' -bench . -benchtime 1x -timeout 30m ./raftstore/ ./scheduler/ ./test/bench/

proto:
	mkdir -p bin
	$(GO) build -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o bin/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	cd proto && protoc -I . --plugin=protoc-gen-go=../bin/protoc-gen-go --plugin=protoc-gen-go-grpc=../bin/protoc-gen-go-grpc \
		--go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative \
		objects.proto raft.proto cluster.proto node.proto

lint:
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) tool staticcheck -tags '$(TAGS)' ./...

clean:
	rm -rf bin
