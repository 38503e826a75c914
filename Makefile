# Thin front for CMake. `make demo` and `make test` do all set-up on a fresh Debian 12 machine (as root).
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build demo test bench install clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	./scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

bench: build
	$(BUILD)/bin/parley-bench stages
	$(BUILD)/bin/parley-bench jitter
	$(BUILD)/bin/parley-bench mixer

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-*
