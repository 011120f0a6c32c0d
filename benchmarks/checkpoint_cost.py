"""Time and size of one checkpoint save (docs/reliability.md).

Run: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/checkpoint_cost.py
"""
import time, tempfile, torch, numpy as np
import activelearn as al
from activelearn.experiment import make_loop
from activelearn.checkpoint import save_checkpoint, checkpoint_path
from activelearn.backbones import build_backbone
d = tempfile.mkdtemp()
loop = make_loop("digits", "entropy", initial=20, budget=20, cycles=2, seed=0, train=al.TrainConfig(epochs=2), progress=False, out_dir=d)
loop.run()
t = time.perf_counter(); 
for _ in range(5): save_checkpoint(loop, "cycle")
print("digits MLP: %.3f s per save, %.2f MB" % ((time.perf_counter() - t) / 5, checkpoint_path(d).stat().st_size / 1e6))
# ResNet-18 (CIFAR) with SGD momentum state, on a pool of 50,000 fake 32x32 images' bookkeeping
net = build_backbone("resnet18", input_shape=(3, 32, 32), num_classes=10)
x = torch.zeros(64, 3, 32, 32)
y = np.arange(64) % 10
d2 = tempfile.mkdtemp()
loop2 = al.ActiveLoop(al.ALModel(net, num_classes=10, device="cpu"), al.strategies.get("entropy"), al.SimulatedOracle(y, num_classes=10), al.Pools(x, num_classes=10),
    trainer=al.Trainer(al.TrainConfig(epochs=1, optimizer="sgd", batch_size=32)), budget=8, cycles=1, initial=32, progress=False, out_dir=d2)
loop2.run()
t = time.perf_counter()
for _ in range(3): save_checkpoint(loop2, "cycle")
print("ResNet-18 + SGD momentum: %.3f s per save, %.1f MB" % ((time.perf_counter() - t) / 3, checkpoint_path(d2).stat().st_size / 1e6))
