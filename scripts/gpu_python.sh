# Sourced by the GPU scripts (benchmarks/gpu_check.sh, benchmarks/gpu_study.sh): sets $py to the
# Python that runs spd. A repository already set up (.venv) uses its own. Otherwise a Python that
# already has PyTorch, torchvision and Lightning (the image of a GPU machine, typically a newer or
# older PyTorch than constraints.txt pins, and often no package index to install from) runs spd
# straight from src/. Failing both, the README's set-up makes .venv.
if [ ! -x .venv/bin/python ] && python3 -c 'import torch, torchvision, lightning, torchmetrics, yaml, safetensors, matplotlib, tensorboard' 2>/dev/null; then
    py=python3
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
    bash scripts/run.sh spd --version >/dev/null   # the set-up, once
    py=.venv/bin/python
fi
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
echo "python: $("$py" -c 'import sys, torch, lightning; print(sys.executable, "torch", torch.__version__, "lightning", lightning.__version__)')"
