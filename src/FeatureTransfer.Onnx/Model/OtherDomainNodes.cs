namespace FeatureTransfer.Onnx.Model;

/// <summary>What <see cref="OpsetUpgrade.ToAtLeast"/> does with nodes outside the default ONNX domain.</summary>
internal enum OtherDomainNodes
{
    /// <summary>Throw <see cref="UnsupportedOpException"/> (training graphs: gradients exist for default-domain ops only).</summary>
    Refuse,

    /// <summary>Leave them as they are: their domains have their own opset versions, which an upgrade of the default domain does not touch.</summary>
    Keep,
}
