using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Markdig;

namespace FeatureTransfer.Reports;

/// <summary>
/// One Markdown source, two files: <c>report.md</c> as written (images are files beside it) and <c>report.html</c>
/// rendered by Markdig (pipe tables, raw HTML such as <c>&lt;details&gt;</c> and thumbnail grids passed through) with
/// every local image inlined as a data URI, so the HTML opens offline and can be mailed as one file.
/// </summary>
internal static partial class ReportDocument
{
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder().UsePipeTables().UseAutoIdentifiers().Build();

    private const string Style =
        "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}" +
        "h1{font-size:1.7em;margin-bottom:.3em}h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}" +
        "table{border-collapse:collapse;margin:.8em 0;font-size:.92em}td,th{border:1px solid #ccc;padding:.25em .55em;vertical-align:top}" +
        "th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}" +
        "blockquote{border-left:4px solid #e67e22;background:#fdf2e9;margin:1em 0;padding:.4em 1em}blockquote p{margin:.3em 0}" +
        "img{max-width:100%;height:auto;vertical-align:top}code{background:#f4f4f4;padding:0 .2em;font-size:.92em;word-break:break-all}" +
        "details{margin:.8em 0}summary{cursor:pointer;color:#1a5fb4}" +
        ".thumbs{display:flex;flex-wrap:wrap;gap:10px;margin:.8em 0}" +
        ".thumbs figure{margin:0;width:150px;border:1px solid #ddd;border-radius:4px;padding:4px;background:#fafafa}" +
        ".thumbs img{display:block;margin:0 auto;max-height:120px}" +
        ".thumbs figcaption{font-size:.8em;line-height:1.3;margin-top:3px;overflow-wrap:anywhere}.thumbs .id{color:#777}";

    /// <summary>Writes <paramref name="markdown"/> to <c>report.md</c> and its HTML rendering to <c>report.html</c> in <paramref name="dir"/>.</summary>
    /// <returns>The paths of report.md and report.html.</returns>
    public static (string Markdown, string Html) Write(string dir, string markdown, string title)
    {
        Directory.CreateDirectory(dir);
        var md = Path.Combine(dir, "report.md");
        var html = Path.Combine(dir, "report.html");
        EvaluationReport.WriteText(md, markdown);
        EvaluationReport.WriteText(html, ToHtml(markdown, dir, title));
        return (md, html);
    }

    /// <summary>Renders <paramref name="markdown"/> as a standalone HTML page; images found under <paramref name="dir"/> become data URIs.</summary>
    public static string ToHtml(string markdown, string dir, string title)
    {
        var body = Markdown.ToHtml(markdown, Pipeline);
        // Images from Markdown and from raw HTML blocks (thumbnail grids) alike: every relative src that names a file here.
        body = ImgSrcRegex().Replace(body, m =>
        {
            var src = WebUtility.HtmlDecode(m.Groups[2].Value);
            if (src.StartsWith("data:", StringComparison.Ordinal) || src.Contains("://", StringComparison.Ordinal)) return m.Value;
            var file = Path.Combine(dir, Uri.UnescapeDataString(src));
            if (!File.Exists(file)) return m.Value;
            return m.Groups[1].Value + DataUri(file) + m.Groups[3].Value;
        });
        return new StringBuilder()
            .Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Append("<title>").Append(WebUtility.HtmlEncode(title)).Append("</title><style>").Append(Style).Append("</style></head><body>\n")
            .Append(body)
            .Append("</body></html>\n")
            .ToString();
    }

    /// <summary>A base64 data URI of an image file (PNG, JPEG, SVG by extension).</summary>
    internal static string DataUri(string file)
    {
        string mime = Path.GetExtension(file).ToLowerInvariant() switch
        {
            ".jpg" or ".jpeg" => "image/jpeg",
            ".svg" => "image/svg+xml",
            ".webp" => "image/webp",
            _ => "image/png",
        };
        return $"data:{mime};base64,{Convert.ToBase64String(File.ReadAllBytes(file))}";
    }

    [GeneratedRegex("(<img\\b[^>]*?\\bsrc=\")([^\"]*)(\")", RegexOptions.IgnoreCase)]
    private static partial Regex ImgSrcRegex();
}
