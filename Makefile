# The two commands: `make demo` and `make test`. Both install what is missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps configure build demo test bench docs clean

deps:
	scripts/install-deps.sh core

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/bin/caulk run pipelines/quickstart.toml

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# Regenerates docs/nodes.md from the node descriptions (a test fails when it drifts).
docs: build
	$(BUILD)/bin/caulk nodes --markdown > docs/nodes.md.tmp && mv docs/nodes.md.tmp docs/nodes.md

bench: build
	cmake --build $(BUILD) -j $(JOBS) --target benchmarks

clean:
	rm -rf $(BUILD)
