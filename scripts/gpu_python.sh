# Sourced by the GPU scripts (benchmarks/gpu_check.sh, benchmarks/gpu_study.sh): sets $py to the
# Python that runs spd. A repository set up by the README's commands (.venv, installed) uses its
# own. Otherwise a Python that already has what spd imports (PyTorch, torchvision, Lightning,
# torchmetrics, PyYAML, safetensors, matplotlib, TensorBoard: the image of a GPU machine, often
# with another PyTorch than constraints.txt pins and no package index) runs spd from src/. Failing
# both, the README's set-up makes .venv.
probe='import sys, torch, torchvision, lightning, torchmetrics, yaml, safetensors, matplotlib, tensorboard
print(sys.executable, "torch", torch.__version__, "lightning", lightning.__version__)'
if [ ! -f .venv/.spd-installed ] && found="$(python3 -c "$probe" 2>&1)"; then
    py=python3
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
    if [ ! -f .venv/.spd-installed ]; then
        echo "no installed .venv, and python3 lacks what spd needs (${found##*$'\n'}): setting up .venv"
    fi
    bash scripts/run.sh spd --version >/dev/null   # the set-up, once
    py=.venv/bin/python
    found="$("$py" -c "$probe")"
fi
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
echo "python: $found"
