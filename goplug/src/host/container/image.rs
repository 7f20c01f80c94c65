//! Which image a container runner may run: pinned by digest unless the
//! user opts out.

/// How an image reference pins its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Pin {
    /// `sha256:<hex>`: the image id (the digest of its config), as
    /// `docker images --no-trunc` prints it and Vault's catalog pins it.
    Id(String),
    /// `name@sha256:<hex>`: a manifest digest.
    Digest(String),
    /// A name or tag alone: what it names can change.
    Unpinned,
}

/// Reads how `image` is pinned; an error says what is wrong with it.
pub(super) fn pin_of(image: &str) -> Result<Pin, String> {
    if image.is_empty() {
        return Err("no image was given".to_owned());
    }
    let digest = |hex: &str| {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(format!("sha256:{hex}"))
        } else {
            Err(format!(
                "{image:?} has a malformed sha256 digest (64 lowercase hex digits expected)"
            ))
        }
    };
    if let Some(hex) = image.strip_prefix("sha256:") {
        return digest(hex).map(Pin::Id);
    }
    match image.split_once('@') {
        Some(("", _)) => Err(format!("{image:?} has no name before '@'")),
        Some((_, pinned)) => match pinned.strip_prefix("sha256:") {
            Some(hex) => digest(hex).map(Pin::Digest),
            None => Err(format!(
                "{image:?} is pinned with a digest that is not sha256"
            )),
        },
        None => Ok(Pin::Unpinned),
    }
}

/// Whether an image the engine found matches the pin it was looked up by.
pub(super) fn matches(pin: &Pin, id: &str, repo_digests: &[String]) -> bool {
    match pin {
        Pin::Id(digest) => id == digest,
        Pin::Digest(digest) => repo_digests
            .iter()
            .any(|d| d.rsplit_once('@').is_some_and(|(_, d)| d == digest)),
        Pin::Unpinned => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0eaeb70e5f60818c9aefa76c398de5e1db88bbd77d40b6d946f303fccfc70003";

    #[test]
    fn pins_are_read_and_malformed_ones_refused() {
        let id = format!("sha256:{HEX}");
        let cases: Vec<(String, Result<Pin, &str>)> = vec![
            (id.clone(), Ok(Pin::Id(id.clone()))),
            (format!("localhost/kv@{id}"), Ok(Pin::Digest(id.clone()))),
            (
                format!("registry:5000/team/kv:1.2@{id}"),
                Ok(Pin::Digest(id.clone())),
            ),
            ("kv:latest".to_owned(), Ok(Pin::Unpinned)),
            ("registry:5000/kv".to_owned(), Ok(Pin::Unpinned)),
            ("sha256:abc".to_owned(), Err("malformed sha256")),
            (format!("sha256:{}", HEX.to_uppercase()), Err("malformed")),
            (format!("kv@sha512:{HEX}"), Err("not sha256")),
            (format!("@{id}"), Err("no name")),
            (String::new(), Err("no image")),
        ];
        for (image, want) in cases {
            match (pin_of(&image), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{image}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{image}: {got}"),
                (got, want) => panic!("{image}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn found_images_must_carry_the_pinned_digest() {
        let id = format!("sha256:{HEX}");
        let other = format!("sha256:{}", "1".repeat(64));
        let digests = vec![format!("localhost/kv@{id}")];
        assert!(matches(&Pin::Id(id.clone()), &id, &[]));
        assert!(!matches(&Pin::Id(id.clone()), &other, &digests));
        assert!(matches(&Pin::Digest(id.clone()), &other, &digests));
        assert!(!matches(&Pin::Digest(other.clone()), &id, &digests));
        assert!(!matches(&Pin::Digest(id), &other, &[]));
        assert!(matches(&Pin::Unpinned, &other, &[]));
    }
}
