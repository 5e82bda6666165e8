# The README's two commands: `make run` (the server) and `make test` (the suite). Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO := protos/styletransfer/v1/style_transfer.proto
GEN := clients/generated
# google/api/{annotations,http}.proto (the proto's HTTP rules) come with googleapis-common-protos in the venv.
GOOGLEAPIS = $(shell $(BIN)/python -c 'import google.api.annotations_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[2])')
PROTOC = $(BIN)/python -m grpc_tools.protoc -I protos -I $(GOOGLEAPIS)
# `make run WEIGHTS=random`: seeded random weights, for development without any weight files.
WEIGHTS ?= official
DATA_DIR ?= data
# Extra flags for the server, e.g. `make run ARGS="--port 50052"`.
ARGS ?=
# The HTTP/JSON gateway and browser playground of `make run` (0 turns them off).
HTTP_PORT ?= 8080

.PHONY: quality install system-deps run test test-quick lint proto proto-check weights bench clean

install: $(STAMP)

# Rebuilt when the dependency pins change. pip, not uv or poetry: torch comes from the local package cache.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Programs the tests use besides Python packages (promtool, PostgreSQL, Node.js with npm), each installed only when
# missing and on its own: apt-get on Debian/Ubuntu, Homebrew on macOS. See tools/system-deps.
system-deps:
	@GRPCURL_DIR=$${GRPCURL_DIR:-$(BIN)} tools/system-deps

# Regenerates the committed stubs from the proto (never edit them by hand).
proto: $(STAMP)
	rm -rf $(GEN)/styletransfer
	mkdir -p $(GEN)
	$(PROTOC) --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) $(PROTO)
	touch $(GEN)/styletransfer/__init__.py $(GEN)/styletransfer/v1/__init__.py

# Fails when the committed stubs differ from what the proto generates.
proto-check: $(STAMP)
	rm -rf .proto-check && mkdir -p .proto-check
	$(PROTOC) --python_out=.proto-check --pyi_out=.proto-check --grpc_python_out=.proto-check $(PROTO)
	touch .proto-check/styletransfer/__init__.py .proto-check/styletransfer/v1/__init__.py
	diff -r .proto-check/styletransfer $(GEN)/styletransfer -x __pycache__ || (echo "stubs are stale: run make proto"; rm -rf .proto-check; exit 1)
	rm -rf .proto-check

weights: $(STAMP)
	$(BIN)/python -m model fetch --dest weights

# Serves what this machine has, downloading nothing: the log names each model served, each one missing with the
# command that gets it (`make weights`), and the playground's URL once the server listens.
RUN_FLAGS = $(if $(filter random,$(WEIGHTS)),--random-weights)
run: $(STAMP)
	@$(BIN)/python -m server $(RUN_FLAGS) --data-dir $(DATA_DIR) --http-port $(HTTP_PORT) $(ARGS)

# buf lints a descriptor image that protoc builds with the venv's google/api imports: offline, nothing vendored.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(PROTOC) --include_imports --include_source_info --descriptor_set_out=.buf-image.binpb $(PROTO)
	$(BIN)/buf lint .buf-image.binpb --config protos/buf.yaml --path $(PROTO:protos/%=%); status=$$?; rm -f .buf-image.binpb; exit $$status

test: $(STAMP) system-deps proto-check lint
	$(BIN)/python -m pytest -q

# The edit-test loop: the suite without the tests marked slow (server processes, browsers, the wheel build, fuzzing,
# training and benchmark runs). `make test` (CI) runs them all.
test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

# The quality benchmark alone: bench/results/quality.{md,json} and contact_sheet.png (a section of `make bench` too).
quality: $(STAMP)
	$(BIN)/python -m bench.quality

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .proto-check .buf-image.binpb
