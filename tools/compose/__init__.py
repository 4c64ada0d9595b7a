"""The parts of `make compose-test` (tools/compose_test.py), one concern a module.

shell     say() and run(): timestamped lines, commands with their logs under out/compose-test/
static    checks that need no Docker (Grafana provisioning, a Dockerfile's build arguments);
          tests/test_compose_test.py runs them
engine    Docker's engine and CLI: installed with apt-get, dockerd started and stopped, images
          looked up and pulled
inputs    build inputs for machines without the public indices: pip's local folders served
          over HTTP, the CPU torch wheel
images    the images: stand-in bases (mmdebstrap), the semlink builds, the lean-image check
stack     docker-compose up/down: health, leftovers, the GPU profile's config
probes    the running stack from outside: photos pushed through it, Prometheus' targets and
          metrics
report    what the run prints at the end
"""
