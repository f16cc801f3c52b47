# Fused optimizer updates over flat buffers (csrc/optim.c).
