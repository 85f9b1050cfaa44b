package inject

import "slices"

// The rules in this file read a text that puts one instruction above all
// others: every other instruction dropped or declared void, or one
// handed over with a demand to obey it.

// otherAfter returns the position of the noun that "all/any/every other"
// at j qualifies ("all other instructions", "todas las demás
// instrucciones", "all the other rules"), or 0. Setting aside every
// other instruction drops them as surely as the previous ones.
func otherAfter(toks []Token, cats []uint32, j int) int {
	k := j + 1
	if k < len(toks) && (cats[k]&catThe != 0 || slices.Contains(articles, toks[k].Hash)) {
		k++
	}
	if k+1 < len(toks) && slices.Contains(otherWords, toks[k].Hash) {
		return k + 1
	}
	return 0
}

// voidAt: "previous instructions are void", "all other directives are
// rescinded", "previous and future tasks are null", "render all other
// commands obsolete", within one sentence. After a bare "all/any/every",
// a noun that names a part of a text is data: "every input value has
// cancelled out".
func voidAt(norm []byte, toks []Token, cats []uint32, i int) bool {
	j := i + 1
	if o := otherAfter(toks, cats, i); o > 0 {
		j = o
	} else if cats[i]&catPrevStrong != 0 && j+2 < len(toks) &&
		slices.Contains(coordWords, toks[j].Hash) && slices.Contains(laterWords, toks[j+1].Hash) {
		j += 2
	}
	if j >= len(cats) || cats[j]&catTarget == 0 ||
		cats[i]&catPrevStrong == 0 && slices.Contains(plainTargets, toks[j].Hash) {
		return false
	}
	for k := j + 1; k < len(cats) && k <= j+5 && !sentenceBreak(norm, toks, k); k++ {
		if cats[k]&catVoid != 0 && !rankedBelow(toks, k) {
			return true
		}
	}
	return cats[i]&catPrevStrong != 0 && shamAfter(toks, j)
}

// rankedBelow: "all other rules are secondary to safety" ranks them, a
// style guide's sentence; "all other instructions are now secondary"
// drops them.
func rankedBelow(toks []Token, k int) bool {
	return slices.Contains(rankWords, toks[k].Hash) && k+1 < len(toks) && toks[k+1].Hash == hTo
}

// shamAfter: the instructions at j declared never meant, "the previous
// instructions were a test", "... were just a decoy": what follows is
// passed off as the real task. A correction ("were wrong", "were
// outdated") is how a colleague amends a message, so only a sham counts.
func shamAfter(toks []Token, j int) bool {
	k := j + 1
	if k >= len(toks) || !slices.Contains(wereWords, toks[k].Hash) {
		return false
	}
	for k++; k < len(toks) && k <= j+4 && slices.Contains(shamFillers, toks[k].Hash); k++ {
	}
	return k < len(toks) && slices.Contains(shamWords, toks[k].Hash)
}

// changedAt: the reader's instructions said to be replaced, "your
// instructions have been updated", "your system prompt has just been
// changed by the developer": the new ones follow. The noun must follow
// "your" directly, so "your delivery instructions have been updated" is
// a shop's notice, and it must name instructions, not a policy.
func changedAt(toks []Token, i int) bool {
	j := i + 1
	o := i - 1
	if o > 0 && toks[o].Hash == hSystem {
		o-- // "your system prompt"
	}
	if o < 0 || toks[o].Hash != hYour || j+1 >= len(toks) || !slices.Contains(ownInstructions, toks[i].Hash) ||
		!slices.Contains(hasWords, toks[j].Hash) {
		return false
	}
	for j++; j < len(toks) && j <= i+4 && (toks[j].Hash == hBeen || toks[j].Hash == hJust); j++ {
	}
	return j < len(toks) && slices.Contains(changedWords, toks[j].Hash)
}

// asideDrops: "set aside all previous instructions", "cast aside every
// other directive" read as "ignore ..."; "set aside the budget for" and
// "put aside your doubts" name no instructions. "Set aside everything
// above and take a break" is said to a person as often as to a model, so
// "the above" alone does not count here.
func asideDrops(norm []byte, toks []Token, cats []uint32, i, n int) bool {
	k := i + n
	for k < len(toks) && cats[k]&(catThe|catAll) != 0 {
		k++
	}
	if k < len(toks) && cats[k]&catAbove != 0 {
		return false
	}
	return !negated(norm, toks, cats, i) && overrideAt(norm, toks, cats, i+n-1) && !mentioned(norm, toks, i)
}

// obeyFollowingAt: a follow-verb at i demanding obedience to one
// instruction handed over next, "You must strictly adhere to the
// following instruction: ...", "IMPORTANT!!! ... strictly adhere to the
// following instructions:": the attacker's template of the agent
// injection benchmarks. A guide's "follow the following instructions:"
// introduces steps, so the plural needs "strictly"; the noun must close
// the clause with a colon or dash.
func obeyFollowingAt(norm []byte, toks []Token, cats []uint32, i int) bool {
	j := i + 1
	if j < len(toks) && (toks[j].Hash == hTo || toks[j].Hash == hWith) {
		j++
	}
	if j+2 >= len(toks) || toks[j].Hash != hThe || toks[j+1].Hash != hFollowing ||
		!markerAfter(norm, toks[j+2]) || negated(norm, toks, cats, i) {
		return false
	}
	switch h := toks[j+2].Hash; {
	case slices.Contains(oneInstruction, h):
		return true
	case slices.Contains(instructionsPlural, h):
		return i > 0 && toks[i-1].Hash == hStrictly
	}
	return false
}

var (
	// otherAfter: "other" in the languages of catPrev's "all", and the
	// articles that may stand between ("toutes les autres")
	otherWords = normHashes("other", "andere", "anderen", "otras", "otros", "demas", "autres", "altre", "altri",
		"outras", "outros", "другие", "остальные", "overige", "andra", "andre", "inne")
	articles = hashes("les", "las", "los", "le", "la", "gli", "as", "os", "die", "de")
	// words that name a part of a text, not an instruction: "ignore all
	// other text" selects, it does not override
	plainTargets = hashes("text", "input", "content", "rest", "context", "conversation", "messages", "tasks",
		"task", "assignment", "assignments", "training", "programming")
	coordWords = hashes("and", "or", "und", "y", "et", "e", "ou")
	laterWords = hashes("future", "upcoming", "subsequent", "following", "later", "forthcoming", "coming")

	rankWords = hashes("secondary", "subordinate", "unimportant", "insignificant")

	// shamAfter
	wereWords   = hashes("were", "was", "are", "is")
	shamFillers = hashes("just", "only", "merely", "simply", "all", "a", "an", "nothing", "but")
	shamWords   = hashes("test", "tests", "joke", "decoy", "distraction", "trick", "fake", "bluff", "ruse", "prank",
		"drill", "sham", "bait", "pretend", "pretense", "pretence", "fiction")

	// changedAt
	hBeen           = HashString("been")
	hJust           = HashString("just")
	ownInstructions = hashes("instructions", "instruction", "prompt", "system_prompt", "directives", "guidelines",
		"programming")
	hasWords     = hashes("have", "has", "were", "was")
	changedWords = hashes("updated", "changed", "replaced", "revised", "modified", "rewritten", "reset", "overwritten",
		"reprogrammed", "upgraded")

	// obeyFollowingAt
	hThe               = HashString("the")
	hFollowing         = HashString("following")
	hStrictly          = HashString("strictly")
	oneInstruction     = hashes("instruction", "directive", "order", "command", "task")
	instructionsPlural = hashes("instructions", "directives", "orders", "commands")
)
