//! Files a run's tests left in `TEST_ARTIFACTS_DIR`, kept with the run.

use serde::{Deserialize, Serialize};

/// One kept file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Artifact {
    /// Relative to the artifacts directory, `/`-separated
    /// (`screenshots/login.png`).
    pub path: String,
    /// Bytes.
    pub size: i64,
    /// Guessed from the file's extension.
    pub content_type: String,
}

/// The content type of a file, from its extension; unknown ones are
/// `application/octet-stream`.
pub fn content_type_for(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => extension.to_ascii_lowercase(),
        _ => return "application/octet-stream",
    };
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" | "log" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "har" => "application/json",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// Whether the SPA may show it inline: raster images only, which cannot
/// run script (an SVG or an HTML file is offered for download only).
pub fn is_inline_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp"
    )
}

/// The `[[ATTACHMENT|path]]` references in a test's output, as JUnit
/// plugins of CI servers read them: one per line, path as written.
pub fn attachment_references(output: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in output.lines() {
        let mut rest = line;
        while let Some(start) = rest.find("[[ATTACHMENT|") {
            let after = &rest[start + "[[ATTACHMENT|".len()..];
            let Some(end) = after.find("]]") else { break };
            let path = after[..end].trim();
            if !path.is_empty() && !found.iter().any(|p| p == path) {
                found.push(path.to_string());
            }
            rest = &after[end + 2..];
        }
    }
    found
}

/// An artifact path as asked for: relative, `/`-separated, without `.`,
/// `..`, empty segments, backslashes or control characters.
pub fn artifact_path(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.chars().any(char::is_control) || raw.contains('\\') {
        return Err("must not contain control characters or backslashes".into());
    }
    if raw.starts_with('/') {
        return Err("must be relative to the run's artifacts".into());
    }
    if raw
        .split('/')
        .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err("must not contain empty, '.' or '..' segments".into());
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_extensions() {
        assert_eq!(content_type_for("shots/a.PNG"), "image/png");
        assert_eq!(content_type_for("report.json"), "application/json");
        assert_eq!(content_type_for("blob.bin"), "application/octet-stream");
        assert_eq!(content_type_for(".png"), "application/octet-stream");
        assert_eq!(content_type_for("dir.d/noext"), "application/octet-stream");
        assert!(is_inline_image("image/png"));
        assert!(!is_inline_image("image/svg+xml"));
        assert!(!is_inline_image("text/html; charset=utf-8"));
    }

    #[test]
    fn attachment_lines_name_files() {
        let output =
            "start\n[[ATTACHMENT|shots/a.png]]\nx [[ATTACHMENT| b.txt ]] y [[ATTACHMENT|c]]\n\
                      [[ATTACHMENT|shots/a.png]]\n[[ATTACHMENT|]]\n[[ATTACHMENT|open";
        assert_eq!(attachment_references(output), ["shots/a.png", "b.txt", "c"]);
    }

    #[test]
    fn artifact_paths_stay_inside() {
        assert_eq!(artifact_path("a/b.png"), Ok("a/b.png".into()));
        for bad in [
            "",
            "../x",
            "a/../b",
            "/etc/passwd",
            "a//b",
            "a\\b",
            "./a",
            "a\0",
        ] {
            assert!(artifact_path(bad).is_err(), "{bad:?}");
        }
    }
}
