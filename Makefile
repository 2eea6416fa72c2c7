# Thin wrapper around CMake and the test scripts; see README.md.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= 2
LISTEN ?= 127.0.0.1:5000
DATA_DIR ?= ./portolan-data
# run-single: access control on (the first admin password is written to DATA_DIR/initial-admin-password); AUTH=off for loopback development
AUTH ?= on

.PHONY: all deps build build-asan run run-single stop test unit format format-check bench clean

all: build

deps:
	scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-asan:
	scripts/deps.sh --test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPT_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# Starts a local three-region cluster in the background (clients on 127.0.0.1:5001-5003,
# data under .local-cluster/); `make stop` stops it.
run: build
	deploy/local-cluster.sh up --build-dir $(BUILD)

stop:
	deploy/local-cluster.sh down

# One registry node in the foreground, without replication.
run-single: build
	$(BUILD)/portolan serve --listen $(LISTEN) --data-dir $(DATA_DIR) --auth $(AUTH)

# Unit tests under ASan/UBSan, then the integration tests against real nodes.
test:
	scripts/deps.sh --test
	tests/run-all.sh

bench: build
	bench/run.sh

format:
	clang-format -i node/*.[ch] node/*/*.[ch] replication/*.[ch] tests/unit/*.c tests/unit/support/*.[ch] tests/fuzz/*.[ch]

format-check:
	clang-format --dry-run -Werror node/*.[ch] node/*/*.[ch] replication/*.[ch] tests/unit/*.c tests/unit/support/*.[ch] tests/fuzz/*.[ch]

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
