# callgrade: the two commands of the quick start, plus a few for developers.
.PHONY: fuzz demo test bench bench-queue bench-upload bench-load bench-crash bench-long-call bench-transcribe bench-score bench-reports bench-web fmt openapi clean

## demo: build, start the service on SQLite, upload, transcribe and score the sample calls, show them, then keep the web app running (Ctrl-C stops).
demo:
	@scripts/demo.sh

## test: install what is missing, start PostgreSQL, then fmt, clippy and every test on both backends.
test:
	@scripts/test.sh

## bench: every benchmark whose figures are in docs/PERFORMANCE.md.
bench: bench-queue bench-upload bench-long-call bench-transcribe bench-score bench-reports bench-web

bench-queue:
	@scripts/bench.sh queue

bench-upload:
	@scripts/bench.sh upload

## bench-load: 16 clients for 5 minutes on SQLite and PostgreSQL (not part of `make bench`: 12+ minutes).
bench-load:
	@scripts/bench.sh load

## bench-crash: 100 rounds of kill -9 during uploads and transcription, on both backends.
bench-crash:
	@scripts/bench.sh crash

bench-long-call:
	@scripts/bench.sh long-call

bench-transcribe:
	@scripts/bench.sh transcribe

bench-score:
	@scripts/bench.sh score

bench-reports:
	@scripts/bench.sh reports

## bench-web: the web app's pages and search on 1M calls and 5M transcript segments, both backends (about 40 minutes).
bench-web:
	@scripts/bench.sh web

## fuzz: the decoder under mutated recordings for MINUTES minutes (default 10).
MINUTES ?= 10
fuzz:
	@scripts/bench.sh fuzz --minutes $(MINUTES)

fmt:
	cargo fmt

## openapi: regenerate docs/openapi.json from the code.
openapi:
	UPDATE_OPENAPI=1 cargo test --test api openapi::checked_in

clean:
	cargo clean
	rm -rf data
