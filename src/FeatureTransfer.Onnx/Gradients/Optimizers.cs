using FeatureTransfer.Onnx.Model;
using Onnx;

namespace FeatureTransfer.Onnx.Gradients;

/// <summary>
/// Optimizer updates as graph ops, following PyTorch's torch.optim formulas: SGD (momentum, dampening 0, Nesterov,
/// coupled weight decay) and AdamW (decoupled weight decay, bias correction from the fed step number).
/// </summary>
internal static class Optimizers
{
    /// <summary>Emits the update of parameter <paramref name="p"/> given its gradient; registers the parameter and its optimizer state.</summary>
    public static void Emit(GradContext c, OptimizerSpec spec, TensorProto p, string grad, string lr, string step, List<StateTensor> state)
    {
        string name = p.Name, next = name + "::next";
        bool decay = spec.WeightDecay > 0 && p.Dims.Count >= 2;
        state.Add(new StateTensor(name, next, p.Clone(), name));
        TensorProto Zeros(string suffix)
        {
            var t = p.Clone();
            t.Name = name + suffix;
            t.FloatData.Clear();
            t.DoubleData.Clear();
            long count = Tensors.ElementCount(p);
            t.RawData = Google.Protobuf.ByteString.CopyFrom(new byte[count * ((ElementType)p.DataType == ElementType.Double ? 8 : 4)]);
            return t;
        }
        switch (spec.Kind)
        {
            case OptimizerKind.Sgd:
            {
                var g = decay ? c.Add(grad, c.Mul(name, c.Scalar(spec.WeightDecay))) : grad;
                string direction = g;
                if (spec.Momentum > 0)
                {
                    var buf = Zeros("::momentum");
                    string bufNext = buf.Name + "::next";
                    c.OpNamed("Add", [c.Mul(buf.Name, c.Scalar(spec.Momentum)), g], [bufNext]);
                    state.Add(new StateTensor(buf.Name, bufNext, buf, null));
                    direction = spec.Nesterov ? c.Add(g, c.Mul(bufNext, c.Scalar(spec.Momentum))) : bufNext;
                }
                c.OpNamed("Sub", [name, c.Mul(direction, lr)], [next]);
                break;
            }
            case OptimizerKind.AdamW:
            {
                var m = Zeros("::adam_m");
                var v = Zeros("::adam_v");
                string mNext = m.Name + "::next", vNext = v.Name + "::next";
                c.OpNamed("Add", [c.Mul(m.Name, c.Scalar(spec.Beta1)), c.Mul(grad, c.Scalar(1 - spec.Beta1))], [mNext]);
                c.OpNamed("Add", [c.Mul(v.Name, c.Scalar(spec.Beta2)), c.Mul(c.Mul(grad, grad), c.Scalar(1 - spec.Beta2))], [vNext]);
                state.Add(new StateTensor(m.Name, mNext, m, null));
                state.Add(new StateTensor(v.Name, vNext, v, null));
                var bc1 = c.Sub(c.Scalar(1), c.Op("Pow", [c.Scalar(spec.Beta1), step]));
                var bc2 = c.Sub(c.Scalar(1), c.Op("Pow", [c.Scalar(spec.Beta2), step]));
                var denom = c.Add(c.Op("Sqrt", [c.Div(vNext, bc2)]), c.Scalar(spec.Epsilon));
                var update = c.Div(c.Div(mNext, bc1), denom);
                string decayed = decay ? c.Mul(name, c.Sub(c.Scalar(1), c.Mul(lr, c.Scalar(spec.WeightDecay)))) : name;
                c.OpNamed("Sub", [decayed, c.Mul(update, lr)], [next]);
                break;
            }
        }
    }
}
