//! Whether a model a setting names is one a server lists, by the server's
//! own naming rules.
//!
//! OpenAI's ids are compared exactly: `gpt-image-2` is not
//! `gpt-image-2-mini`. Local servers name models the way Ollama does,
//! `[host/][namespace/]model[:tag]` with `registry.ollama.ai`, `library` and
//! `latest` filled in when left out, compared without regard to case (as
//! Ollama's `ParseName` and `Name.EqualFold` do). So `llama3.2` is
//! `llama3.2:latest` and `registry.ollama.ai/library/llama3.2:latest`, while
//! an explicit tag matches only itself: `llama3.2:1b` is not `llama3.2`.

use crate::ListedModel;

/// `listed`, plus each configured model the server lists under another
/// spelling (`llama3.2` listed as `llama3.2:latest`) under its configured
/// name: the catalogue compares ids exactly, and a model is called, priced
/// and reported by the name its setting gives (the server resolves it as it
/// resolved it for the listing).
pub fn listed_as_configured<'a>(
    mut listed: Vec<ListedModel>,
    configured: impl IntoIterator<Item = &'a String>,
    naming: Naming,
) -> Vec<ListedModel> {
    let mut aliases = Vec::new();
    for model in configured {
        if listed.iter().any(|l| &l.id == model) {
            continue;
        }
        if let Some(found) = listed.iter().find(|l| naming.same(model, &l.id)) {
            aliases.push(ListedModel {
                id: model.clone(),
                shutdown_date: found.shutdown_date,
            });
        }
    }
    listed.extend(aliases);
    listed
}

/// How names compare at one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// OpenAI's catalogue: the id exactly.
    Exact,
    /// Any other server: Ollama's rules (a superset of exact matching).
    Ollama,
}

impl Naming {
    /// Exact at OpenAI's API, Ollama's rules anywhere else.
    pub fn for_base_url(base_url: &str) -> Self {
        if is_openai(base_url) {
            Naming::Exact
        } else {
            Naming::Ollama
        }
    }

    /// Whether `configured` names the model the server lists as `listed`.
    pub fn same(self, configured: &str, listed: &str) -> bool {
        configured == listed
            || (self == Naming::Ollama
                && OllamaName::parse(configured) == OllamaName::parse(listed))
    }

    /// The listed id that `configured` names, if any.
    pub fn find<'a>(
        self,
        configured: &str,
        listed: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        listed.into_iter().find(|l| self.same(configured, l))
    }
}

/// Whether `base_url` is OpenAI's own API (`api.openai.com`).
pub fn is_openai(base_url: &str) -> bool {
    host_and_port(base_url)
        .0
        .eq_ignore_ascii_case("api.openai.com")
}

/// Whether the server looks like Ollama: its default port, or a catalogue
/// whose every id carries a tag (Ollama lists `llama3.2:latest`, never
/// `llama3.2`). Decides only the advice given, never what matches.
pub fn looks_like_ollama<'a>(base_url: &str, listed: impl IntoIterator<Item = &'a str>) -> bool {
    let mut listed = listed.into_iter().peekable();
    host_and_port(base_url).1 == Some("11434")
        || (listed.peek().is_some() && listed.all(|id| OllamaName::parse_bare(id).tag.is_some()))
}

/// The host and port of a URL such as `http://127.0.0.1:11434/v1`.
fn host_and_port(url: &str) -> (&str, Option<&str>) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// A model name with Ollama's defaults filled in, lower-cased.
#[derive(Debug, PartialEq, Eq)]
struct OllamaName {
    host: String,
    namespace: String,
    model: String,
    tag: String,
}

/// The parts as written, before defaults (Ollama's `ParseNameBare`).
struct BareName<'a> {
    host: Option<&'a str>,
    namespace: Option<&'a str>,
    model: &'a str,
    tag: Option<&'a str>,
}

impl OllamaName {
    fn parse(name: &str) -> Self {
        let bare = Self::parse_bare(name);
        Self {
            host: bare.host.unwrap_or("registry.ollama.ai").to_lowercase(),
            namespace: bare.namespace.unwrap_or("library").to_lowercase(),
            model: bare.model.to_lowercase(),
            tag: bare.tag.unwrap_or("latest").to_lowercase(),
        }
    }

    /// A `:` after the last `/` starts the tag (a `:` before it is a host's
    /// port); then the model, namespace and host from the right.
    fn parse_bare(name: &str) -> BareName<'_> {
        let (rest, tag) = match (name.rfind(':'), name.rfind('/')) {
            (Some(colon), slash) if slash.is_none_or(|s| colon > s) => {
                (&name[..colon], Some(&name[colon + 1..]))
            }
            _ => (name, None),
        };
        let (rest, model) = match rest.rsplit_once('/') {
            Some((rest, model)) => (Some(rest), model),
            None => (None, rest),
        };
        let (host, namespace) = match rest.map(|r| r.rsplit_once('/').ok_or(r)) {
            Some(Ok((host, namespace))) => (Some(host), Some(namespace)),
            Some(Err(namespace)) => (None, Some(namespace)),
            None => (None, None),
        };
        let host = host.map(|h| h.split_once("://").map_or(h, |(_, h)| h));
        fn non_empty(part: Option<&str>) -> Option<&str> {
            part.filter(|p| !p.is_empty())
        }
        BareName {
            host: non_empty(host),
            namespace: non_empty(namespace),
            model,
            tag: non_empty(tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_without_a_tag_is_the_latest() {
        let ollama = Naming::Ollama;
        assert!(ollama.same("llama3.2", "llama3.2:latest"));
        assert!(ollama.same("x/z-image-turbo", "x/z-image-turbo:latest"));
        assert!(ollama.same("llama3.2:latest", "llama3.2"));
        assert!(ollama.same("Llama3.2", "llama3.2:LATEST"), "case-blind");
    }

    #[test]
    fn default_host_and_namespace_compare_equal() {
        let ollama = Naming::Ollama;
        assert!(ollama.same(
            "registry.ollama.ai/library/llama3.2:latest",
            "llama3.2:latest"
        ));
        assert!(ollama.same("library/llama3.2", "llama3.2:latest"));
        assert!(ollama.same(
            "https://registry.ollama.ai/x/z-image-turbo",
            "x/z-image-turbo:latest"
        ));
        assert!(
            !ollama.same("x/llama3.2", "llama3.2:latest"),
            "another namespace"
        );
        assert!(!ollama.same("example.com/library/llama3.2", "llama3.2:latest"));
        assert!(ollama.same("localhost:5000/me/sd:v1", "LOCALHOST:5000/me/sd:v1"));
    }

    #[test]
    fn an_explicit_tag_matches_only_itself() {
        let ollama = Naming::Ollama;
        assert!(!ollama.same("llama3.2:1b", "llama3.2:latest"));
        assert!(!ollama.same("llama3.2:1b", "llama3.2"));
        assert!(!ollama.same("llama3.2", "llama3.2:1b"));
        assert!(ollama.same("llama3.2:1b", "llama3.2:1b"));
    }

    #[test]
    fn openai_keeps_exact_matching() {
        let naming = Naming::for_base_url("https://api.openai.com/v1");
        assert_eq!(naming, Naming::Exact);
        assert!(!naming.same("gpt-image-2", "gpt-image-2-mini"));
        assert!(!naming.same("gpt-image-2", "gpt-image-2:latest"));
        assert!(naming.same("gpt-image-2", "gpt-image-2"));
        // Tolerant elsewhere, but never a prefix match.
        assert!(!Naming::Ollama.same("gpt-image-2", "gpt-image-2-mini"));
        assert_eq!(
            Naming::for_base_url("http://127.0.0.1:11434/v1"),
            Naming::Ollama
        );
        assert_eq!(
            Naming::for_base_url("https://api.openai.com.example/v1"),
            Naming::Ollama
        );
    }

    #[test]
    fn find_returns_the_id_the_server_lists() {
        let listed = ["x/z-image-turbo:latest", "llama3.2:latest", "llama3.2:1b"];
        let ollama = Naming::Ollama;
        assert_eq!(ollama.find("llama3.2", listed), Some("llama3.2:latest"));
        assert_eq!(ollama.find("llama3.2:1b", listed), Some("llama3.2:1b"));
        assert_eq!(ollama.find("x/flux2", listed), None);
        assert_eq!(Naming::Exact.find("llama3.2", listed), None);
    }

    #[test]
    fn configured_spellings_of_listed_models_count_as_listed() {
        let listed = |ids: &[&str]| -> Vec<ListedModel> {
            ids.iter()
                .map(|id| ListedModel {
                    id: (*id).to_owned(),
                    shutdown_date: None,
                })
                .collect()
        };
        let configured = ["llama3.2".to_owned(), "x/flux2".to_owned()];
        let ids = |models: Vec<ListedModel>| -> Vec<String> {
            models.into_iter().map(|m| m.id).collect()
        };
        assert_eq!(
            ids(listed_as_configured(
                listed(&["llama3.2:latest"]),
                &configured,
                Naming::Ollama
            )),
            ["llama3.2:latest", "llama3.2"]
        );
        assert_eq!(
            ids(listed_as_configured(
                listed(&["llama3.2:latest"]),
                &configured,
                Naming::Exact
            )),
            ["llama3.2:latest"]
        );
    }

    #[test]
    fn ollama_is_told_by_its_port_or_its_tags() {
        assert!(looks_like_ollama("http://127.0.0.1:11434/v1", []));
        assert!(looks_like_ollama(
            "http://gpu-box:8000/v1",
            ["x/z-image-turbo:latest", "llama3.2:latest"]
        ));
        assert!(!looks_like_ollama(
            "http://127.0.0.1:8080/v1",
            ["stablediffusion", "llama3.2:latest"]
        ));
        assert!(!looks_like_ollama("http://127.0.0.1:8080/v1", []));
    }
}
