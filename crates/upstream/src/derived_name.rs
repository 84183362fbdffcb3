//! A friend's name when the server has no chat model to ask (sd-server has
//! no chat endpoint at all): made from the subject, the same every time —
//! "Sealy" from "a seal", "Horsey" from "the horse", "Puppy" from "a puppy".

/// The name for a friend who is `subject`.
pub fn name_from_subject(subject: &str) -> String {
    let lower = subject.trim().to_lowercase();
    // The noun is usually last: "a big orange robot" is Roboty.
    let word: String = lower
        .split(|c: char| !c.is_alphabetic())
        .rfind(|w| !w.is_empty() && !matches!(*w, "a" | "an" | "the" | "some"))
        .unwrap_or("buddy")
        .chars()
        .take(30)
        .collect();
    let named = match word.chars().last() {
        Some('y') => word,
        Some('a' | 'i' | 'o' | 'u') => word,
        _ => format!("{word}y"),
    };
    let mut chars = named.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Buddy".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::name_from_subject;

    #[test]
    fn names_come_from_the_subject_and_never_change() {
        assert_eq!(name_from_subject("a seal"), "Sealy");
        assert_eq!(name_from_subject("a seal"), name_from_subject("a seal"));
        assert_eq!(name_from_subject("the horse"), "Horsey");
        assert_eq!(name_from_subject("a puppy"), "Puppy");
        assert_eq!(name_from_subject("an orange robot!"), "Roboty");
        assert_eq!(name_from_subject("a hippo"), "Hippo");
        assert_eq!(name_from_subject("Élan"), "Élany");
        assert_eq!(name_from_subject("  42 "), "Buddy");
        assert_eq!(name_from_subject("a"), "Buddy");
    }
}
