# Sourced by the corpus benches: the model list and where each model lives.
# corpus_base ENTRY prints the path prefix of a corpus model (script:model),
# generating it (seeded, full size) on first use: PREFIX_preserve.onnx is
# the trained form, PREFIX_deploy.onnx its deploy twin.
# zoo_model NAME prints the path of an exported torchvision model.
# random_calibration MODEL OUT.npy writes 8 seeded normal samples shaped as
# the model's first input (dynamic dims 1): speed does not depend on them.
CORPUS="repvgg:a0 multibranch:acnet multibranch:dbb multibranch:dbb_bnpad multibranch:mobileone updp:resnet34
        updp:mobilenetv2 updp:convnext_t updp:deit_tiny concat:vovnet27 concat:elan
        concat:kw_static concat:kw_dynamic linear_regions:fastvit linear_regions:orepa
        linear_regions:acnet_crop linear_regions:repvit linear_regions:lab"
ZOO="resnet18 resnet50 mobilenet_v2 mobilenet_v3_large efficientnet_b0 regnet_y_400mf
     shufflenet_v2_x1_0 googlenet densenet121 squeezenet1_0 convnext_tiny deit_tiny"

corpus_base() {
  local script=${1%%:*} model=${1#*:} base args
  if [ "$script" = repvgg ]; then base="$OUT/repvgg_a0"; args=(--variant a0)
  else base="$OUT/${model}_full"; args=(--model "$model"); fi
  [ -f "${base}_deploy.onnx" ] || /usr/bin/python3 "$ROOT/scripts/corpus/$script.py" "$OUT" "${args[@]}" >/dev/null 2>&1
  echo "$base"
}

zoo_model() {
  local path="$OUT/zoo_$1.onnx"
  [ -f "$path" ] || /usr/bin/python3 "$ROOT/bench/export_torchvision.py" "$1" "$path" >/dev/null 2>&1
  echo "$path"
}

random_calibration() {
  local shape
  shape=$(/usr/bin/python3 -c "
import onnx, sys
m = onnx.load(sys.argv[1], load_external_data=False)
d = m.graph.input[0].type.tensor_type.shape.dim
print(' '.join(str(x.dim_value) if x.dim_value > 0 else '1' for x in d))" "$1")
  /usr/bin/python3 -c "
import numpy as np, sys
shape = [8] + [int(s) for s in sys.argv[2:]][1:]
np.random.seed(0); np.save(sys.argv[1], np.random.randn(*shape).astype(np.float32))" "$2" $shape
}
