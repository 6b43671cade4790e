#!/bin/bash
# `ftcli train` across several nodes under SLURM: one torchrun per node, one process per GPU, the ranks
# meeting at the first node. Pass ftcli's settings after the script:
#
#   sbatch scripts/slurm_train.sh task=instruction model.name_or_path=meta-llama/Llama-3.1-8B method=lora trainer=ddp
#
# The run directory must be on storage every node sees (rank 0 writes it; every rank reads its
# checkpoints on resume). SLURM's SIGTERM before the time limit (--signal) makes every rank finish the
# step, save a checkpoint and exit 130; with --requeue the job comes back and trainer.resume=auto
# continues it from that checkpoint.
#SBATCH --job-name=ftcli
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --signal=TERM@120
#SBATCH --requeue
#SBATCH --output=%x-%j.out
set -euo pipefail

GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MAIN_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
RUN_DIR=${RUN_DIR:-outputs/slurm/$SLURM_JOB_NAME-$SLURM_JOB_ID}

srun --kill-on-bad-exit=1 torchrun \
    --nnodes "$SLURM_NNODES" --nproc_per_node "$GPUS_PER_NODE" \
    --rdzv_backend c10d --rdzv_endpoint "$MAIN_NODE:29500" --rdzv_id "$SLURM_JOB_ID" \
    -m ftcli train "hydra.run.dir=$RUN_DIR" trainer.resume=auto "$@"
