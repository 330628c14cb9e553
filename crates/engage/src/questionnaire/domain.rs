//! The pure rules of questionnaires: the graph a questionnaire is, its validation, walking
//! it one answer at a time, scoring, quiz pass marks, and the risk-appetite bands.
//!
//! A questionnaire is a directed graph. Each question has single-choice options; each
//! option leads to another question or ends the questionnaire (`next: null`) and carries a
//! score (quizzes: the points a correct answer earns, 0 for a wrong one; the risk
//! questionnaire: a risk score). A valid graph is acyclic, every option's target exists and
//! every question is reachable from the start, so every walk from the start ends after at
//! most one answer per question — the property the proptests below check.
//!
//! Nothing here knows HTTP or SQL: a session is just the list of answers given so far,
//! replayed against the graph each time ([`walk`]), so the stored state can never disagree
//! with the graph's rules.

use std::collections::{HashMap, HashSet};

use huoban_identity::Locale;
use serde::{Deserialize, Serialize};

/// Id of the built-in risk-appetite questionnaire, usable wherever a questionnaire id is.
pub const RISK_APPETITE_ID: &str = "risk-appetite";

/// Most questions a questionnaire may have; keeps a saved graph (and its walk) small.
pub const MAX_QUESTIONS: usize = 100;
/// Most options a question may have.
pub const MAX_OPTIONS: usize = 12;
/// Longest id of a question or an option.
pub const MAX_ID_LEN: usize = 64;
/// Longest text in any locale, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// A text in the three locales Huoban speaks. zh-CN is required; a missing zh-TW or en
/// falls back to it, so an operator can publish first and translate later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Text {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    #[serde(rename = "zh-TW", default, skip_serializing_if = "Option::is_none")]
    pub zh_tw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl Text {
    pub fn new(zh_cn: &str, zh_tw: &str, en: &str) -> Self {
        Self {
            zh_cn: zh_cn.to_owned(),
            zh_tw: Some(zh_tw.to_owned()),
            en: Some(en.to_owned()),
        }
    }

    /// The text in the locale, or in zh-CN when it has not been translated.
    pub fn get(&self, locale: Locale) -> &str {
        let translated = match locale {
            Locale::ZhCn => None,
            Locale::ZhTw => self.zh_tw.as_deref(),
            Locale::En => self.en.as_deref(),
        };
        translated.unwrap_or(&self.zh_cn)
    }

    fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.zh_cn.as_str())
            .chain(self.zh_tw.as_deref())
            .chain(self.en.as_deref())
    }

    fn is_valid(&self) -> bool {
        self.all()
            .all(|t| !t.trim().is_empty() && t.chars().count() <= MAX_TEXT_CHARS)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Answers are collected; scores are informative only.
    Survey,
    /// Scored against a pass mark; passing pays a points reward once per customer.
    Quiz,
    /// The built-in risk-appetite questionnaire; its score sets a suitability level.
    RiskAppetite,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Survey => "survey",
            Kind::Quiz => "quiz",
            Kind::RiskAppetite => "risk_appetite",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerOption {
    pub id: String,
    pub text: Text,
    /// The question this answer leads to; `null` ends the questionnaire.
    #[serde(default)]
    pub next: Option<String>,
    /// Quizzes: the points this answer earns (0 when wrong). Risk questionnaire: its risk score.
    #[serde(default)]
    pub score: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub text: Text,
    pub options: Vec<AnswerOption>,
}

impl Question {
    pub fn option(&self, id: &str) -> Option<&AnswerOption> {
        self.options.iter().find(|o| o.id == id)
    }
}

/// What a quiz takes to pass and what passing pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuizRules {
    /// The lowest total score that passes.
    pub pass_mark: i64,
    /// Points paid, once per customer, for passing. May be 0.
    pub reward_points: i64,
}

/// A questionnaire's definition: the graph and, for quizzes, the pass rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Questionnaire {
    pub kind: Kind,
    pub title: Text,
    /// Id of the first question.
    pub start: String,
    pub questions: Vec<Question>,
    /// Required for quizzes, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiz: Option<QuizRules>,
}

impl Questionnaire {
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }
}

/// Why a questionnaire cannot be saved. Each names the question (and option) at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GraphError {
    NoQuestions,
    TooManyQuestions {
        count: usize,
    },
    MissingStart {
        start: String,
    },
    InvalidId {
        question: String,
        option: Option<String>,
    },
    DuplicateQuestion {
        question: String,
    },
    DuplicateOption {
        question: String,
        option: String,
    },
    TooFewOptions {
        question: String,
        count: usize,
    },
    TooManyOptions {
        question: String,
        count: usize,
    },
    InvalidText {
        question: Option<String>,
        option: Option<String>,
    },
    /// The option leads to a question that does not exist: a dead end.
    MissingTarget {
        question: String,
        option: String,
        target: String,
    },
    /// Following this option comes back to a question already on the path.
    Cycle {
        question: String,
        option: String,
        target: String,
    },
    Unreachable {
        question: String,
    },
    MissingQuizRules,
    UnexpectedQuizRules,
    InvalidReward {
        reward_points: i64,
    },
    /// No walk can reach the pass mark.
    PassMarkUnreachable {
        pass_mark: i64,
        max_score: i64,
    },
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::NoQuestions => write!(f, "the questionnaire has no questions"),
            GraphError::TooManyQuestions { count } => {
                write!(f, "{count} questions; at most {MAX_QUESTIONS} are allowed")
            }
            GraphError::MissingStart { start } => write!(f, "the start question {start:?} does not exist"),
            GraphError::InvalidId { question, option: None } => {
                write!(
                    f,
                    "question id {question:?} must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ -"
                )
            }
            GraphError::InvalidId {
                question,
                option: Some(option),
            } => write!(
                f,
                "option id {option:?} of question {question:?} must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ -"
            ),
            GraphError::DuplicateQuestion { question } => write!(f, "question id {question:?} is used twice"),
            GraphError::DuplicateOption { question, option } => {
                write!(f, "option id {option:?} is used twice in question {question:?}")
            }
            GraphError::TooFewOptions { question, count } => {
                write!(f, "question {question:?} has {count} option(s); at least 2 are needed")
            }
            GraphError::TooManyOptions { question, count } => {
                write!(
                    f,
                    "question {question:?} has {count} options; at most {MAX_OPTIONS} are allowed"
                )
            }
            GraphError::InvalidText { question, option } => {
                let place = match (question, option) {
                    (None, _) => "the title".to_owned(),
                    (Some(q), None) => format!("question {q:?}"),
                    (Some(q), Some(o)) => format!("option {o:?} of question {q:?}"),
                };
                write!(
                    f,
                    "the text of {place} is empty or longer than {MAX_TEXT_CHARS} characters"
                )
            }
            GraphError::MissingTarget {
                question,
                option,
                target,
            } => write!(
                f,
                "option {option:?} of question {question:?} leads to {target:?}, which does not exist"
            ),
            GraphError::Cycle {
                question,
                option,
                target,
            } => write!(
                f,
                "option {option:?} of question {question:?} leads back to {target:?}, making a cycle"
            ),
            GraphError::Unreachable { question } => {
                write!(f, "question {question:?} cannot be reached from the start")
            }
            GraphError::MissingQuizRules => write!(f, "a quiz needs a pass mark and a reward"),
            GraphError::UnexpectedQuizRules => write!(f, "only quizzes have a pass mark and a reward"),
            GraphError::InvalidReward { reward_points } => {
                write!(f, "the reward must be 0 to 1000000 points, not {reward_points}")
            }
            GraphError::PassMarkUnreachable { pass_mark, max_score } => {
                write!(
                    f,
                    "the pass mark {pass_mark} is above the best possible score {max_score}"
                )
            }
        }
    }
}

/// Largest quiz reward, a guard against an operator's typo paying millions of points.
pub const MAX_REWARD_POINTS: i64 = 1_000_000;

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks everything a questionnaire must be before it is saved and shown to customers,
/// and returns every problem found, not just the first, so an operator fixes them in one go.
pub fn validate(q: &Questionnaire) -> Result<(), Vec<GraphError>> {
    let mut errors = Vec::new();
    if q.questions.is_empty() {
        errors.push(GraphError::NoQuestions);
    }
    if q.questions.len() > MAX_QUESTIONS {
        // A graph this large is refused before walking it.
        return Err(vec![GraphError::TooManyQuestions {
            count: q.questions.len(),
        }]);
    }
    if !q.title.is_valid() {
        errors.push(GraphError::InvalidText {
            question: None,
            option: None,
        });
    }
    let mut seen = HashSet::new();
    for question in &q.questions {
        if !valid_id(&question.id) {
            errors.push(GraphError::InvalidId {
                question: question.id.clone(),
                option: None,
            });
        }
        if !seen.insert(question.id.as_str()) {
            errors.push(GraphError::DuplicateQuestion {
                question: question.id.clone(),
            });
        }
        if !question.text.is_valid() {
            errors.push(GraphError::InvalidText {
                question: Some(question.id.clone()),
                option: None,
            });
        }
        let count = question.options.len();
        if count < 2 {
            errors.push(GraphError::TooFewOptions {
                question: question.id.clone(),
                count,
            });
        }
        if count > MAX_OPTIONS {
            errors.push(GraphError::TooManyOptions {
                question: question.id.clone(),
                count,
            });
        }
        let mut options = HashSet::new();
        for option in &question.options {
            if !valid_id(&option.id) {
                errors.push(GraphError::InvalidId {
                    question: question.id.clone(),
                    option: Some(option.id.clone()),
                });
            }
            if !options.insert(option.id.as_str()) {
                errors.push(GraphError::DuplicateOption {
                    question: question.id.clone(),
                    option: option.id.clone(),
                });
            }
            if !option.text.is_valid() {
                errors.push(GraphError::InvalidText {
                    question: Some(question.id.clone()),
                    option: Some(option.id.clone()),
                });
            }
            if let Some(target) = &option.next
                && !seen_anywhere(q, target)
            {
                errors.push(GraphError::MissingTarget {
                    question: question.id.clone(),
                    option: option.id.clone(),
                    target: target.clone(),
                });
            }
        }
    }
    let start_exists = seen_anywhere(q, &q.start);
    if !q.questions.is_empty() && !start_exists {
        errors.push(GraphError::MissingStart { start: q.start.clone() });
    }
    errors.extend(cycles(q));
    if start_exists {
        let reachable = reachable_from_start(q);
        for question in &q.questions {
            if !reachable.contains(question.id.as_str()) {
                errors.push(GraphError::Unreachable {
                    question: question.id.clone(),
                });
            }
        }
    }
    match (q.kind, q.quiz) {
        (Kind::Quiz, None) => errors.push(GraphError::MissingQuizRules),
        (Kind::Quiz, Some(rules)) => {
            if !(0..=MAX_REWARD_POINTS).contains(&rules.reward_points) {
                errors.push(GraphError::InvalidReward {
                    reward_points: rules.reward_points,
                });
            }
            // The best score only means something on a sound graph.
            if errors.is_empty() {
                let max_score = max_score(q);
                if rules.pass_mark > max_score {
                    errors.push(GraphError::PassMarkUnreachable {
                        pass_mark: rules.pass_mark,
                        max_score,
                    });
                }
            }
        }
        (_, Some(_)) => errors.push(GraphError::UnexpectedQuizRules),
        (_, None) => {}
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn seen_anywhere(q: &Questionnaire, id: &str) -> bool {
    q.questions.iter().any(|question| question.id == id)
}

/// The first question of each id, so a duplicate id (reported on its own) does not make
/// the graph algorithms below ambiguous.
fn index(q: &Questionnaire) -> HashMap<&str, &Question> {
    let mut by_id = HashMap::new();
    for question in &q.questions {
        by_id.entry(question.id.as_str()).or_insert(question);
    }
    by_id
}

/// Every edge that closes a cycle (a back edge of a depth-first search), visiting
/// questions and options in their written order so the report is deterministic.
fn cycles(q: &Questionnaire) -> Vec<GraphError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    let by_id = index(q);
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut found = Vec::new();
    for root in &q.questions {
        if marks.contains_key(root.id.as_str()) {
            continue;
        }
        // Iterative, so a long chain of questions cannot overflow the stack.
        let mut stack: Vec<(&Question, usize)> = vec![(by_id[root.id.as_str()], 0)];
        marks.insert(root.id.as_str(), Mark::OnPath);
        while let Some((question, next_option)) = stack.last_mut() {
            let question = *question;
            let Some(option) = question.options.get(*next_option) else {
                marks.insert(question.id.as_str(), Mark::Done);
                stack.pop();
                continue;
            };
            *next_option += 1;
            let Some(target) = option.next.as_deref().and_then(|t| by_id.get(t)) else {
                continue;
            };
            match marks.get(target.id.as_str()) {
                Some(Mark::OnPath) => found.push(GraphError::Cycle {
                    question: question.id.clone(),
                    option: option.id.clone(),
                    target: target.id.clone(),
                }),
                Some(Mark::Done) => {}
                None => {
                    marks.insert(target.id.as_str(), Mark::OnPath);
                    stack.push((target, 0));
                }
            }
        }
    }
    found
}

fn reachable_from_start(q: &Questionnaire) -> HashSet<&str> {
    let by_id = index(q);
    let mut reached = HashSet::new();
    let mut queue = vec![q.start.as_str()];
    while let Some(id) = queue.pop() {
        let Some(question) = by_id.get(id) else { continue };
        if !reached.insert(question.id.as_str()) {
            continue;
        }
        queue.extend(question.options.iter().filter_map(|o| o.next.as_deref()));
    }
    reached
}

/// The best total score any walk can reach. Only meaningful on a valid (acyclic) graph.
pub fn max_score(q: &Questionnaire) -> i64 {
    score_bound(q, i64::max)
}

/// The worst total score any walk can reach. Only meaningful on a valid (acyclic) graph.
pub fn min_score(q: &Questionnaire) -> i64 {
    score_bound(q, i64::min)
}

fn score_bound(q: &Questionnaire, pick: fn(i64, i64) -> i64) -> i64 {
    fn from<'a>(
        id: &'a str,
        by_id: &HashMap<&'a str, &'a Question>,
        memo: &mut HashMap<&'a str, i64>,
        pick: fn(i64, i64) -> i64,
        depth: usize,
    ) -> i64 {
        if let Some(known) = memo.get(id) {
            return *known;
        }
        // A guard for graphs that were not validated: a cycle cannot recurse forever.
        let Some(question) = by_id.get(id).filter(|_| depth <= by_id.len()) else {
            return 0;
        };
        let best = question
            .options
            .iter()
            .map(|o| {
                let rest = o.next.as_deref().map_or(0, |n| from(n, by_id, memo, pick, depth + 1));
                o.score.saturating_add(rest)
            })
            .reduce(pick)
            .unwrap_or(0);
        memo.insert(question.id.as_str(), best);
        best
    }
    let by_id = index(q);
    from(q.start.as_str(), &by_id, &mut HashMap::new(), pick, 0)
}

/// One answer given in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub question: String,
    pub option: String,
}

/// Where a walk stands after the answers so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position<'a> {
    /// This question is to be answered next.
    At(&'a Question),
    /// The last answer ended the questionnaire.
    Finished(Outcome),
}

/// A finished walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The questions answered, in order.
    pub path: Vec<String>,
    pub score: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// The answer is to a question other than the current one.
    #[error("question {given:?} is not the current question{}", expected.as_ref().map(|e| format!(" ({e:?} is)")).unwrap_or_default())]
    NotOnPath { given: String, expected: Option<String> },
    #[error("question {question:?} has no option {option:?}")]
    UnknownOption { question: String, option: String },
    #[error("the questionnaire is already finished")]
    Finished,
    /// The stored answers do not fit the graph (it cannot change under a session, so
    /// this means corrupt data).
    #[error("the answers so far do not fit the questionnaire")]
    Inconsistent,
}

/// Replays the answers so far from the start and says what comes next.
pub fn walk<'a>(q: &'a Questionnaire, answers: &[Answer]) -> Result<Position<'a>, WalkError> {
    let mut current = q.question(&q.start).ok_or(WalkError::Inconsistent)?;
    let mut path = Vec::with_capacity(answers.len());
    let mut score: i64 = 0;
    for (i, answer) in answers.iter().enumerate() {
        let option = (answer.question == current.id)
            .then(|| current.option(&answer.option))
            .flatten()
            .ok_or(WalkError::Inconsistent)?;
        path.push(current.id.clone());
        score = score.saturating_add(option.score);
        match &option.next {
            Some(next) => current = q.question(next).ok_or(WalkError::Inconsistent)?,
            None if i + 1 == answers.len() => return Ok(Position::Finished(Outcome { path, score })),
            None => return Err(WalkError::Inconsistent),
        }
    }
    Ok(Position::At(current))
}

/// Takes one more answer: it must answer the current question with one of its options.
/// Returns the answers including the new one and where the walk stands then.
pub fn answer<'a>(
    q: &'a Questionnaire,
    answers: &[Answer],
    question: &str,
    option: &str,
) -> Result<(Vec<Answer>, Position<'a>), WalkError> {
    let current = match walk(q, answers)? {
        Position::Finished(_) => return Err(WalkError::Finished),
        Position::At(current) => current,
    };
    if current.id != question {
        return Err(WalkError::NotOnPath {
            given: question.to_owned(),
            expected: Some(current.id.clone()),
        });
    }
    if current.option(option).is_none() {
        return Err(WalkError::UnknownOption {
            question: question.to_owned(),
            option: option.to_owned(),
        });
    }
    let mut next = answers.to_vec();
    next.push(Answer {
        question: question.to_owned(),
        option: option.to_owned(),
    });
    let position = walk(q, &next)?;
    Ok((next, position))
}

/// Whether a quiz score passes.
pub fn passes(rules: QuizRules, score: i64) -> bool {
    score >= rules.pass_mark
}

/// A customer's suitability for investment products, from the most cautious (C1) to the
/// most risk-tolerant (C5), as Chinese banks classify investors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Suitability {
    C1,
    C2,
    C3,
    C4,
    C5,
}

impl Suitability {
    pub const ALL: [Suitability; 5] = [
        Suitability::C1,
        Suitability::C2,
        Suitability::C3,
        Suitability::C4,
        Suitability::C5,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Suitability::C1 => "C1",
            Suitability::C2 => "C2",
            Suitability::C3 => "C3",
            Suitability::C4 => "C4",
            Suitability::C5 => "C5",
        }
    }

    pub fn parse(s: &str) -> Option<Suitability> {
        Suitability::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Maps a risk-appetite total to a level. The built-in questionnaire scores 5 to 21
    /// (every walk answers five questions); the bands are:
    ///
    /// | score   | level | profile                                    |
    /// |---------|-------|--------------------------------------------|
    /// | ≤ 7     | C1    | conservative: capital preservation only     |
    /// | 8 – 10  | C2    | cautious: low-risk products                 |
    /// | 11 – 14 | C3    | balanced: medium-risk products              |
    /// | 15 – 17 | C4    | growth: medium-to-high-risk products        |
    /// | ≥ 18    | C5    | aggressive: high-risk products              |
    ///
    /// Customers 65 and over take the retirement-income branch, whose best total is 17,
    /// so they are at most C4 — on purpose: high-risk products are not suggested to
    /// retirees by a questionnaire alone.
    pub fn from_score(score: i64) -> Suitability {
        match score {
            i64::MIN..=7 => Suitability::C1,
            8..=10 => Suitability::C2,
            11..=14 => Suitability::C3,
            15..=17 => Suitability::C4,
            _ => Suitability::C5,
        }
    }

    pub fn describe(self) -> Text {
        let (zh_cn, zh_tw, en) = match self {
            Suitability::C1 => ("保守型", "保守型", "Conservative"),
            Suitability::C2 => ("稳健型", "穩健型", "Cautious"),
            Suitability::C3 => ("平衡型", "平衡型", "Balanced"),
            Suitability::C4 => ("成长型", "成長型", "Growth"),
            Suitability::C5 => ("进取型", "進取型", "Aggressive"),
        };
        Text::new(zh_cn, zh_tw, en)
    }
}

fn option(id: &str, text: Text, next: Option<&str>, score: i64) -> AnswerOption {
    AnswerOption {
        id: id.to_owned(),
        text,
        next: next.map(str::to_owned),
        score,
    }
}

fn question(id: &str, text: Text, options: Vec<AnswerOption>) -> Question {
    Question {
        id: id.to_owned(),
        text,
        options,
    }
}

/// The built-in risk-appetite questionnaire (id [`RISK_APPETITE_ID`]): age band, then
/// investment experience — or, for customers 65 and over, their retirement income
/// instead — then horizon, loss tolerance and goal. Five answers on every path; the
/// total maps to C1–C5 through [`Suitability::from_score`].
pub fn risk_appetite() -> Questionnaire {
    let t = Text::new;
    Questionnaire {
        kind: Kind::RiskAppetite,
        title: t("风险承受能力评估", "風險承受能力評估", "Risk appetite assessment"),
        start: "age".into(),
        quiz: None,
        questions: vec![
            question(
                "age",
                t("您的年龄是？", "您的年齡是？", "How old are you?"),
                vec![
                    option("a", t("18–35 岁", "18–35 歲", "18–35"), Some("experience"), 4),
                    option("b", t("36–50 岁", "36–50 歲", "36–50"), Some("experience"), 3),
                    option("c", t("51–64 岁", "51–64 歲", "51–64"), Some("experience"), 2),
                    option(
                        "d",
                        t("65 岁及以上", "65 歲及以上", "65 or over"),
                        Some("retirement_income"),
                        1,
                    ),
                ],
            ),
            question(
                "experience",
                t(
                    "您有哪些投资经验？",
                    "您有哪些投資經驗？",
                    "What have you invested in before?",
                ),
                vec![
                    option("a", t("只有存款", "只有存款", "Deposits only"), Some("horizon"), 1),
                    option(
                        "b",
                        t(
                            "银行理财、国债",
                            "銀行理財、國債",
                            "Bank wealth products, government bonds",
                        ),
                        Some("horizon"),
                        2,
                    ),
                    option("c", t("基金", "基金", "Funds"), Some("horizon"), 3),
                    option(
                        "d",
                        t("股票、期货等", "股票、期貨等", "Stocks, futures and similar"),
                        Some("horizon"),
                        4,
                    ),
                ],
            ),
            question(
                "retirement_income",
                t(
                    "您退休后的主要收入来源是？",
                    "您退休後的主要收入來源是？",
                    "What is your main income in retirement?",
                ),
                vec![
                    option("a", t("只有养老金", "只有養老金", "A pension only"), Some("horizon"), 1),
                    option(
                        "b",
                        t("养老金和储蓄", "養老金和儲蓄", "A pension and savings"),
                        Some("horizon"),
                        2,
                    ),
                    option(
                        "c",
                        t(
                            "养老金和租金或投资收益",
                            "養老金和租金或投資收益",
                            "A pension and rent or investment income",
                        ),
                        Some("horizon"),
                        3,
                    ),
                ],
            ),
            question(
                "horizon",
                t(
                    "这笔资金您计划投资多久？",
                    "這筆資金您計劃投資多久？",
                    "How long do you plan to invest this money?",
                ),
                vec![
                    option(
                        "a",
                        t("1 年以内", "1 年以內", "Under a year"),
                        Some("loss_tolerance"),
                        1,
                    ),
                    option("b", t("1–3 年", "1–3 年", "1 to 3 years"), Some("loss_tolerance"), 2),
                    option("c", t("3–5 年", "3–5 年", "3 to 5 years"), Some("loss_tolerance"), 3),
                    option(
                        "d",
                        t("5 年以上", "5 年以上", "Over 5 years"),
                        Some("loss_tolerance"),
                        4,
                    ),
                ],
            ),
            question(
                "loss_tolerance",
                t(
                    "您能接受的最大本金亏损是？",
                    "您能接受的最大本金虧損是？",
                    "What is the largest loss of capital you could accept?",
                ),
                vec![
                    option("a", t("不能亏损", "不能虧損", "No loss"), Some("goal"), 1),
                    option("b", t("5% 以内", "5% 以內", "Up to 5%"), Some("goal"), 2),
                    option("c", t("5%–15%", "5%–15%", "5% to 15%"), Some("goal"), 3),
                    option("d", t("15%–30%", "15%–30%", "15% to 30%"), Some("goal"), 4),
                    option("e", t("30% 以上", "30% 以上", "Over 30%"), Some("goal"), 5),
                ],
            ),
            question(
                "goal",
                t(
                    "您投资的主要目标是？",
                    "您投資的主要目標是？",
                    "What is your main goal?",
                ),
                vec![
                    option("a", t("保本", "保本", "Keep my capital safe"), None, 1),
                    option("b", t("稳定收益", "穩定收益", "Steady income"), None, 2),
                    option("c", t("稳健增值", "穩健增值", "Balanced growth"), None, 3),
                    option("d", t("追求高收益", "追求高收益", "The highest returns"), None, 4),
                ],
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text(s: &str) -> Text {
        Text {
            zh_cn: s.to_owned(),
            zh_tw: None,
            en: None,
        }
    }

    /// A question whose options lead to the given targets (`None` ends).
    fn q(id: &str, targets: &[(&str, Option<&str>, i64)]) -> Question {
        question(
            id,
            text(id),
            targets
                .iter()
                .map(|(o, next, score)| option(o, text(o), *next, *score))
                .collect(),
        )
    }

    fn survey(questions: Vec<Question>) -> Questionnaire {
        Questionnaire {
            kind: Kind::Survey,
            title: text("t"),
            start: questions.first().map(|q| q.id.clone()).unwrap_or_default(),
            questions,
            quiz: None,
        }
    }

    fn a(question: &str, option: &str) -> Answer {
        Answer {
            question: question.into(),
            option: option.into(),
        }
    }

    #[test]
    fn the_built_in_risk_questionnaire_is_valid_branches_and_spans_every_level() {
        let risk = risk_appetite();
        assert_eq!(validate(&risk), Ok(()));
        assert!((5..=7).contains(&risk.questions.len()));
        assert_eq!((min_score(&risk), max_score(&risk)), (5, 21));
        assert_eq!(Suitability::from_score(5), Suitability::C1);
        assert_eq!(Suitability::from_score(21), Suitability::C5);
        // Retirees take another branch and cannot reach C5.
        let mut senior = risk.clone();
        senior.start = "retirement_income".into();
        assert_eq!(max_score(&senior) + 1, 17);
        let levels: HashSet<_> = (5..=21).map(Suitability::from_score).collect();
        assert_eq!(levels.len(), 5);
    }

    #[test]
    fn walking_the_risk_questionnaire_follows_the_chosen_branch() {
        let risk = risk_appetite();
        let mut answers = Vec::new();
        for (question, option) in [
            ("age", "d"),
            ("retirement_income", "a"),
            ("horizon", "a"),
            ("loss_tolerance", "a"),
        ] {
            let (next, position) = answer(&risk, &answers, question, option).expect("on path");
            assert!(matches!(position, Position::At(_)));
            answers = next;
        }
        let (answers, end) = answer(&risk, &answers, "goal", "a").expect("on path");
        let Position::Finished(outcome) = end else {
            panic!("finished")
        };
        assert_eq!(outcome.score, 5);
        assert_eq!(
            outcome.path,
            ["age", "retirement_income", "horizon", "loss_tolerance", "goal"]
        );
        assert_eq!(Suitability::from_score(outcome.score), Suitability::C1);
        assert_eq!(answer(&risk, &answers, "goal", "a"), Err(WalkError::Finished));
    }

    #[test]
    fn an_answer_off_the_path_or_with_an_unknown_option_is_refused() {
        let risk = risk_appetite();
        let (answers, _) = answer(&risk, &[], "age", "a").expect("first");
        assert_eq!(
            answer(&risk, &answers, "retirement_income", "a"),
            Err(WalkError::NotOnPath {
                given: "retirement_income".into(),
                expected: Some("experience".into())
            })
        );
        assert_eq!(
            answer(&risk, &answers, "age", "b").map(|_| ()),
            Err(WalkError::NotOnPath {
                given: "age".into(),
                expected: Some("experience".into())
            })
        );
        assert_eq!(
            answer(&risk, &answers, "experience", "z").map(|_| ()),
            Err(WalkError::UnknownOption {
                question: "experience".into(),
                option: "z".into()
            })
        );
        // Stored answers that skip a question do not replay.
        assert_eq!(
            walk(&risk, &[a("age", "a"), a("horizon", "a")]),
            Err(WalkError::Inconsistent)
        );
    }

    #[test]
    fn every_kind_of_broken_graph_is_named() {
        let broken = survey(vec![
            q("q1", &[("a", Some("q2"), 0), ("a", Some("nowhere"), 0)]),
            q("q2", &[("a", Some("q1"), 0), ("b", None, 0)]),
            q("q2", &[("a", None, 0), ("b", None, 0)]),
            q("lonely", &[("a", None, 0)]),
        ]);
        let errors = validate(&broken).expect_err("invalid");
        for expected in [
            GraphError::DuplicateOption {
                question: "q1".into(),
                option: "a".into(),
            },
            GraphError::MissingTarget {
                question: "q1".into(),
                option: "a".into(),
                target: "nowhere".into(),
            },
            GraphError::DuplicateQuestion { question: "q2".into() },
            GraphError::Cycle {
                question: "q2".into(),
                option: "a".into(),
                target: "q1".into(),
            },
            GraphError::TooFewOptions {
                question: "lonely".into(),
                count: 1,
            },
            GraphError::Unreachable {
                question: "lonely".into(),
            },
        ] {
            assert!(errors.contains(&expected), "{expected} missing from {errors:?}");
        }
        let mut no_start = survey(vec![q("q1", &[("a", None, 0), ("b", None, 0)])]);
        no_start.start = "q0".into();
        assert_eq!(
            validate(&no_start),
            Err(vec![GraphError::MissingStart { start: "q0".into() }])
        );
        assert_eq!(validate(&survey(vec![])), Err(vec![GraphError::NoQuestions]));
    }

    #[test]
    fn quiz_rules_are_checked_against_the_best_score() {
        let mut quiz = survey(vec![
            q("q1", &[("right", Some("q2"), 1), ("wrong", Some("q2"), 0)]),
            q("q2", &[("right", None, 1), ("wrong", None, 0)]),
        ]);
        quiz.kind = Kind::Quiz;
        assert_eq!(validate(&quiz), Err(vec![GraphError::MissingQuizRules]));
        quiz.quiz = Some(QuizRules {
            pass_mark: 3,
            reward_points: 10,
        });
        assert_eq!(
            validate(&quiz),
            Err(vec![GraphError::PassMarkUnreachable {
                pass_mark: 3,
                max_score: 2
            }])
        );
        quiz.quiz = Some(QuizRules {
            pass_mark: 2,
            reward_points: 10,
        });
        assert_eq!(validate(&quiz), Ok(()));
        assert!(passes(
            QuizRules {
                pass_mark: 2,
                reward_points: 10
            },
            2
        ));
        assert!(!passes(
            QuizRules {
                pass_mark: 2,
                reward_points: 10
            },
            1
        ));
    }

    #[test]
    fn a_missing_translation_falls_back_to_simplified_chinese() {
        let t = text("你好");
        assert_eq!(t.get(Locale::En), "你好");
        let full = Text::new("你好", "你好", "Hello");
        assert_eq!(full.get(Locale::En), "Hello");
    }

    /// A random acyclic questionnaire: question `i`'s first option leads to `i + 1` (so
    /// every question is reachable), the others end or lead forward; `choices` pick the
    /// other targets.
    fn dag(sizes: &[usize], choices: &[usize]) -> Questionnaire {
        let n = sizes.len();
        let mut picks = choices.iter().copied().cycle();
        let questions = (0..n)
            .map(|i| {
                let options = (0..sizes[i])
                    .map(|k| {
                        let next = if k == 0 {
                            (i + 1 < n).then(|| format!("q{}", i + 1))
                        } else {
                            // A target strictly after i, or the end.
                            let forward = n - i - 1;
                            let pick = picks.next().unwrap_or(0) % (forward + 1);
                            (pick > 0).then(|| format!("q{}", i + pick))
                        };
                        AnswerOption {
                            id: format!("o{k}"),
                            text: text("o"),
                            next,
                            score: k as i64,
                        }
                    })
                    .collect();
                Question {
                    id: format!("q{i}"),
                    text: text("q"),
                    options,
                }
            })
            .collect();
        survey(questions)
    }

    fn graphs() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        (
            prop::collection::vec(2usize..5, 1..15),
            prop::collection::vec(0usize..100, 1..60),
        )
    }

    proptest! {
        #[test]
        fn random_dags_validate((sizes, choices) in graphs()) {
            prop_assert_eq!(validate(&dag(&sizes, &choices)), Ok(()));
        }

        #[test]
        fn a_back_edge_is_refused_as_a_cycle(
            (sizes, choices) in graphs(),
            from in any::<prop::sample::Index>(),
            to in any::<prop::sample::Index>(),
        ) {
            let mut graph = dag(&sizes, &choices);
            let n = sizes.len();
            // The chain of first options makes every later question reachable from an
            // earlier one, so an edge from `j` back to `i <= j` closes a cycle.
            let j = from.index(n);
            let i = to.index(j + 1);
            let target = format!("q{i}");
            graph.questions[j].options[1].next = Some(target.clone());
            let errors = validate(&graph).expect_err("a cycle");
            prop_assert!(
                errors.iter().any(|e| matches!(e, GraphError::Cycle { .. })),
                "no cycle reported in {:?}", errors
            );
        }

        #[test]
        fn any_complete_walk_of_a_valid_graph_ends(
            (sizes, choices) in graphs(),
            picks in prop::collection::vec(0usize..10, 1..20),
        ) {
            let graph = dag(&sizes, &choices);
            let mut answers = Vec::new();
            let mut picks = picks.iter().cycle();
            // One answer per question at most, since no question comes twice.
            for _ in 0..graph.questions.len() {
                let Position::At(current) = walk(&graph, &answers).expect("replays") else {
                    unreachable!("the loop stops at the end")
                };
                let pick = picks.next().copied().unwrap_or(0) % current.options.len();
                let (question, option) = (current.id.clone(), current.options[pick].id.clone());
                let (next, position) = answer(&graph, &answers, &question, &option).expect("on path");
                answers = next;
                if let Position::Finished(outcome) = position {
                    prop_assert_eq!(outcome.path.len(), answers.len());
                    prop_assert!(outcome.score <= max_score(&graph));
                    prop_assert!(outcome.score >= min_score(&graph));
                    return Ok(());
                }
            }
            prop_assert!(false, "the walk did not end within {} answers", graph.questions.len());
        }
    }
}
