# Convenience targets; the real work is in the deno tasks (deno.json) and build.ts.
#   make            build build/lib/libwasi_nn_backend.so (deno task build)
#   make reference  also llama.cpp's own tools into build/bin
#   make c-host     build/c_host_example, a C program driving the shim ABI directly
DENO ?= deno
CFLAGS ?= -O2 -Wall -Wextra
LIBRARY := build/lib/libwasi_nn_backend.so

.PHONY: all build reference test check bench examples c-host clean help

all: build

build:
	$(DENO) task build

reference:
	$(DENO) task build:reference

test:
	$(DENO) task test

check:
	$(DENO) task check

bench:
	$(DENO) task bench

examples:
	$(DENO) task examples

c-host: build/c_host_example

# Links against the built library; finds it at run time next to itself ($ORIGIN/lib).
build/c_host_example: native/c_host_example.c native/wasi_nn_shim.h $(LIBRARY)
	$(CC) $(CFLAGS) -Inative -o $@ $< -Lbuild/lib -lwasi_nn_backend -Wl,-rpath,'$$ORIGIN/lib'

# Only when the library is missing; `make build` brings an existing one up to date.
$(LIBRARY):
	$(DENO) task build

# Build outputs only; the llama.cpp source and generated models in .cache/ stay.
clean:
	rm -rf build

help:
	@sed -n 's/^#   //p' Makefile
