# Convenience front end for the README's two commands; the build itself is CMake.
#   make serve   install dependencies, build, start cxrd on port 8500 (development config)
#   make check   install dependencies, build, run every test (also under ASan + UBSan)
.PHONY: all build serve check format format-check clean

BUILD_DIR ?= build
JOBS ?= $(shell nproc)

all: build

build:
	scripts/install-deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCXR_WERROR=ON
	cmake --build $(BUILD_DIR) -j $(JOBS)

serve: build
	scripts/serve-dev $(BUILD_DIR)

check:
	scripts/check

format-check:
	cmake -S . -B $(BUILD_DIR) >/dev/null && cmake --build $(BUILD_DIR) --target format-check

format:
	cmake -S . -B $(BUILD_DIR) >/dev/null && cmake --build $(BUILD_DIR) --target format

clean:
	rm -rf build build-asan build-fuzz
