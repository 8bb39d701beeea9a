/**
 * A stand-in trainer for the harness's error paths and resume: a few lines of Python (stdlib only)
 * written to a temp dir, speaking the trainer's protocol. The behaviour comes from the config's
 * `fake` field; without it, it "trains" by writing a checkpoint per epoch, resuming from the
 * highest one in checkpointDir, and writes model.pt and metrics.json (and, when FAKE_ONNX_DIR is
 * set, copies the model.onnx and onnx-check files found there, e.g. an untrained model's export).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const MAIN = String.raw`
import json, os, signal, sys, time
def emit(**e):
    sys.stdout.write(json.dumps(e) + "\n"); sys.stdout.flush()
if "--check" in sys.argv:
    emit(event="env", python="3", torch="fake", torchvision="fake", cuda=False, gpus=0); sys.exit(0)
cfg = json.load(open(sys.argv[sys.argv.index("--config") + 1]))
mode = cfg.get("fake", "train")
sys.stderr.write("fake trainer: mode %s\n" % mode); sys.stderr.flush()
if mode == "config-event":
    emit(event="error", kind="config", message="'epochs' = 0: must be an integer >= 1"); sys.exit(2)
if mode == "exit2":
    sys.stderr.write("something about the dataset\n"); sys.exit(2)
if mode == "weights":
    sys.exit(3)
if mode == "runtime-event":
    sys.stderr.write("Traceback: boom\n")
    emit(event="error", kind="runtime", message="RuntimeError: boom"); sys.exit(1)
if mode == "oom-kill":
    sys.stderr.write("allocating a lot\n"); sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "split-lines":
    line = json.dumps({"event": "warning", "message": "split"})
    for ch in line:
        sys.stdout.write(ch); sys.stdout.flush(); time.sleep(0.002)
    sys.stdout.write("\nnot json\n"); sys.stdout.flush(); sys.exit(0)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    emit(event="warning", message="ready")
    while True: time.sleep(0.05)
if mode == "sleep":
    emit(event="warning", message="ready")
    while True: time.sleep(0.05)
ckdir, out = cfg["checkpointDir"], cfg["outputDir"]
done = [int(f[6:10]) for f in os.listdir(ckdir) if f.startswith("epoch-")]
start = max(done) if done else 0
emit(event="start", task=cfg["task"], model=cfg["model"], device="cpu", worldSize=1, epochs=cfg["epochs"],
     stepsPerEpoch=2, trainImages=4, valImages=2, resumedFrom=start or None, weights=cfg["weights"])
history = [{"epoch": e, "trainLoss": 1.0 / e, "seconds": 0.1, "imagesPerSecond": 40.0, "metrics": {"f1Samples": 0.5}} for e in range(1, start + 1)]
for epoch in range(start + 1, cfg["epochs"] + 1):
    for step in (1, 2):
        emit(event="step", epoch=epoch, step=step, steps=2, loss=1.0 / epoch, lr=0.01, imagesPerSecond=40.0)
    rec = {"epoch": epoch, "trainLoss": 1.0 / epoch, "seconds": 0.1, "imagesPerSecond": 40.0, "metrics": {"f1Samples": 0.5 + epoch / 10}}
    history.append(rec); emit(event="epoch", **rec)
    path = os.path.join(ckdir, "epoch-%04d.pt" % epoch)
    open(path, "wb").write(b"checkpoint %d" % epoch)
    emit(event="checkpoint", epoch=epoch, path=path)
    if cfg.get("killAfterEpoch") == epoch:
        os.kill(os.getpid(), signal.SIGKILL)
open(os.path.join(out, "model.pt"), "wb").write(b"model")
metrics = {"task": cfg["task"], "model": cfg["model"], "weightsUsed": "none", "worldSize": 1, "epochs": history,
           "final": history[-1]["metrics"], "bestEpoch": history[-1]["epoch"]}
json.dump(metrics, open(os.path.join(out, "metrics.json"), "w"))
emit(event="artifact", name="model.pt", path=os.path.join(out, "model.pt"))
if os.environ.get("FAKE_ONNX_DIR"):
    import shutil
    src = os.environ["FAKE_ONNX_DIR"]
    for f in sorted(os.listdir(src)):
        if f == "model.onnx" or f.startswith("onnx-check"):
            shutil.copy(os.path.join(src, f), os.path.join(out, f))
emit(event="done", epochs=cfg["epochs"], metrics=history[-1]["metrics"], bestEpoch=history[-1]["epoch"])
`;

/** Writes the fake package under `dir` and returns the folder to put on PYTHONPATH. */
export async function writeFakeTrainer(dir: string): Promise<string> {
  await mkdir(join(dir, 'geobatch_trainer'), { recursive: true });
  await writeFile(join(dir, 'geobatch_trainer', '__init__.py'), '');
  await writeFile(join(dir, 'geobatch_trainer', '__main__.py'), MAIN);
  return dir;
}
