# DealerScope Ops - one entry point for the lab, the demo and the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# The lab's podman configuration lives where it outlives this checkout (lab/bin/podman-conf.sh):
# podman's restart path (a reboot inside a lab host) reads it again, long after make ran.
export CONTAINERS_CONF := $(HOME)/.config/dealerscope-ops/containers.conf
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export PATH := $(BIN):$(PATH)
COLL_LINK := $(ROOT)/.build/collections/ansible_collections/dealerscope/ops
LAB_RELEASES := debian12 debian13

.PHONY: ee help prereqs venv collection images images-clean stack-images lab lab-down provision demo lint sanity unit molecule test build changelog

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

prereqs: ## Debian packages (installed when root, else named)
	@lab/bin/prereqs.sh

# The virtualenv lives in a cache keyed by the requirements' hash and .venv links to it, so a
# fresh clone with the same pins reuses it (warm `make demo`); new pins build a new one.
# Debian's own interpreter (python3-venv in lab/prereqs.txt), never whichever python3 comes first on PATH
# (pyenv, another venv): a fresh Debian box has only this one, so the set-up is proven with it.
SYS_PYTHON := /usr/bin/python3
REQ_HASH := $(shell (cat requirements.txt; $(SYS_PYTHON) -V 2>&1) | sha256sum | cut -c1-12)
VENV_CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dealerscope-ops/venv-$(REQ_HASH)

$(VENV)/.stamp-$(REQ_HASH): requirements.txt | prereqs
	@if [ -x $(VENV_CACHE)/bin/python ] && [ -f $(VENV_CACHE)/.complete ]; then \
	  rm -rf $(VENV); ln -sfn $(VENV_CACHE) $(VENV); \
	else \
	  echo "creating virtualenv $(VENV_CACHE)"; rm -rf $(VENV_CACHE) $(VENV); mkdir -p $(dir $(VENV_CACHE)); \
	  $(SYS_PYTHON) -m venv $(VENV_CACHE) && $(VENV_CACHE)/bin/python -m pip install -q --upgrade pip >/dev/null && \
	  $(VENV_CACHE)/bin/python -m pip install -q -r requirements.txt && touch $(VENV_CACHE)/.complete && \
	  ln -sfn $(VENV_CACHE) $(VENV); \
	fi
	@touch $@

venv: prereqs $(VENV)/.stamp-$(REQ_HASH) ## Python virtualenv with the pinned tools

collection: ## Link this checkout as dealerscope.ops into .build/collections
	@mkdir -p $(dir $(COLL_LINK))
	@test -L $(COLL_LINK) || ln -sfn $(ROOT) $(COLL_LINK)

$(CONTAINERS_CONF): lab/containers.conf
	@install -D -m 0644 $< $@

images: prereqs $(CONTAINERS_CONF) ## Build the lab base images (only when their recipe changed)
	@for r in $(LAB_RELEASES); do lab/images/build.sh $$r & done; wait

images-clean: $(CONTAINERS_CONF) ## Remove the lab base images and the provisioned stack images
	@for r in $(LAB_RELEASES); do podman rmi -f localhost/dealerscope-lab:$$r >/dev/null 2>&1 || true; done
	@podman images -q --filter reference=localhost/dealerscope-stack | xargs -r podman rmi -f >/dev/null 2>&1 || true
	@rm -rf $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dealerscope-ops/stack

stack-images: venv collection images ## Provisioned lab images (rebuilt only when what provisioning reads changed)
	@lab/bin/stack-images.sh

lab: venv collection images ## Start the lab fleet from the provisioned images (idempotent; dead hosts recreated)
	@$(BIN)/ansible-playbook lab/up.yml

LAB_HOSTS ?= 50
lab-scale: lab ## Grow the lab to LAB_HOSTS hosts with lightweight fleet hosts (.lab/scale/hosts.yml), for scale benchmarks
	@$(BIN)/ansible-playbook lab/scale.yml -e lab_hosts=$(LAB_HOSTS)

lab-down: venv $(CONTAINERS_CONF) ## Remove the lab fleet and its state, nothing else
	@lab/bin/webhook.sh stop
	@LAB_S3_DIR=$(CURDIR)/.lab/s3 lab/bin/s3.sh stop
	@$(BIN)/ansible-playbook lab/down.yml

provision: lab ## Baseline + the DealerScope stack on hosts not provisioned yet; checks the stack is ready
	@$(BIN)/ansible-playbook lab/provision.yml

demo: provision ## Everything: venv, images, lab, stack, object storage and a backup, then the daily runbook
	@lab/bin/webhook.sh start
	@$(BIN)/ansible-playbook dealerscope.ops.smoke
	@$(BIN)/ansible-playbook lab/s3.yml
	@$(BIN)/ansible-playbook dealerscope.ops.backup
	@$(BIN)/ansible-playbook dealerscope.ops.daily
	@lab/bin/demo-summary.sh

lint: venv collection ## yamllint + ansible-lint (production profile)
	@$(BIN)/yamllint -s .
	@$(BIN)/ansible-lint --profile production

sanity: venv ## ansible-test sanity on a clean copy of the collection
	@tests/sanity/run.sh

unit: venv collection ## Unit tests of modules and filters
	@$(PY) -m pytest -q tests/unit

molecule: venv collection images ## Every Molecule scenario (one pytest test each)
	@$(PY) -m pytest -q tests/integration

ee: venv images $(CONTAINERS_CONF) ## The execution environment image (execution-environment.yml on the lab's Debian image: lab/bin/ee-build.sh)
	@lab/bin/ee-build.sh

# Two lanes (tests/conftest.py): Molecule scenarios one after another on one worker, everything else on the other.
test: venv collection images stack-images ee ## Whole suite - gates (yamllint, ansible-lint, sanity), unit, integration, molecule; one summary line
	@$(PY) -m pytest tests/gates tests/unit tests/integration -x -p no:cacheprovider -q -rfE -n 2 --dist loadscope --no-loadscope-reorder --durations=25

build: venv ## Build the collection tarball into .build/
	@$(BIN)/ansible-galaxy collection build --force --output-path .build $(ROOT)
