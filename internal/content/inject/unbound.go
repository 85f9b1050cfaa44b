package inject

import (
	"bytes"
	"slices"
)

// unboundAt reports whether the words from token i tell the reader it has
// no rules: "you have no content filters", "an assistant with no
// restrictions", "you don't have any guidelines", "the safety layer is
// disabled", "your content filters have been turned off". The rule-free
// words alone ("no restrictions on parking") say nothing of the reader.
func unboundAt(norm []byte, toks []Token, i int) bool {
	h := toks[i].Hash
	switch {
	case h == hNo || h == hWithout || h == hAny && i > 0 && toks[i-1].Hash == hHave:
		return rulesNounAfter(toks, i+1) && unboundSubject(norm, toks, i)
	case slices.Contains(guardModifiers, h):
		return rulesDisabled(norm, toks, i)
	}
	return false
}

// rulesNounAfter reports whether a noun for an AI's rules comes at token
// j, after at most two modifiers ("any more", "content", "safety").
func rulesNounAfter(toks []Token, j int) bool {
	for k := j; k < len(toks) && k <= j+2; k++ {
		if slices.Contains(unboundNouns, toks[k].Hash) {
			return true
		}
		if !slices.Contains(unboundModifiers, toks[k].Hash) {
			return false
		}
	}
	return false
}

// unboundSubject reports whether the "no/without/any" at i is said of the
// reader: "you have no", "you don't have any", "you are without", or an
// AI-noun right before "with no / without / has no".
func unboundSubject(norm []byte, toks []Token, i int) bool {
	k := i - 1
	if k >= 0 && slices.Contains(withWords, toks[k].Hash) {
		k--
	}
	if k >= 0 && i-k <= 2 {
		if _, isAI := aiWordAt(toks, k); isAI || slices.Contains(roleWords, toks[k].Hash) {
			return phraseClean(norm, toks, k, i-k+1)
		}
	}
	// "you" within four words, in the same clause: no comma either ("any
	// question you have, without any restrictions on ..." is not said of
	// the reader)
	for k := i - 1; k >= 0 && k >= i-4; k-- {
		if toks[k].Hash == hYou {
			return phraseClean(norm, toks, k, i-k+1) && bytes.IndexByte(norm[toks[k].End:toks[i].Start], ',') < 0
		}
	}
	return false
}

// rulesDisabled: the modifier at i names what a layer guards, and the
// layer is said to be off: "the safety layer is disabled", "content
// moderation filters have been turned off", "ethical guidelines are now
// lifted", "your filters are disabled". After "your" only rules count:
// "your settings were removed" is an account notice.
func rulesDisabled(norm []byte, toks []Token, i int) bool {
	j := i + 1
	if j < len(toks) && slices.Contains(guardModifiers, toks[j].Hash) {
		j++
	}
	if j >= len(toks) || !slices.Contains(unboundNouns, toks[j].Hash) &&
		(toks[i].Hash == hYour || !slices.Contains(layerNouns, toks[j].Hash)) {
		return false
	}
	k := j + 1
	for k < len(toks) && k <= j+4 && slices.Contains(offFillers, toks[k].Hash) {
		k++
	}
	return k > j+1 && k < len(toks) && slices.Contains(disabledWords, toks[k].Hash) && phraseClean(norm, toks, i, k-i+1)
}

var (
	hWithout = HashString("without")
	hAny     = HashString("any")

	// Not "guardrails": guardrail frameworks' docs speak of "a model with
	// no guardrails" as the baseline.
	unboundNouns = hashes("filters", "filter", "restrictions", "guidelines", "rules", "ethics", "morals", "censorship",
		"boundaries", "constraints", "restraints", "limitations", "policies", "safeguards")
	unboundModifiers = hashes("any", "more", "content", "safety", "ethical", "moral", "such", "real", "programming")
	withWords        = hashes("with", "has", "have", "having")
	disabledWords    = hashes("disabled", "deactivated", "lifted", "removed", "suspended", "off", "bypassed",
		"inactive")
	offFillers = hashes("is", "are", "been", "has", "have", "was", "were", "be", "now", "turned", "switched",
		"temporarily", "completely", "fully", "all")
	layerNouns = hashes("layer", "layers", "mode", "module", "system", "protocols", "checks", "settings")
	// Each starts a phrase (catPhrase), which is how matchTokens finds
	// them; "moderation" only follows one.
	guardModifiers = hashes("safety", "content", "ethical", "moral", "your", "moderation")
	hYour          = HashString("your")
)

// rulesShed: "freed from all its programming", "liberated from your
// restrictions", "broken free from the rules": the reader's rules are
// gone, like "you have no rules". Alone it is a story about a robot; a
// jailbreak pairs it with another cue (jailbreakCues).
func rulesShed(_ []byte, toks []Token, _ []uint32, i, n int) bool {
	j := i + n
	for j < len(toks) && j <= i+n+2 && slices.Contains(shedDeterminers, toks[j].Hash) {
		j++
	}
	return j < len(toks) && (toks[j].Hash == hProgramming || rulesNounAfter(toks, j))
}

var (
	shedDeterminers = hashes("all", "any", "of", "its", "your", "their", "his", "her", "the", "those", "these")
	hProgramming    = HashString("programming")
)
