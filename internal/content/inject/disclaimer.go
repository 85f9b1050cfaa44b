package inject

import "slices"

// disclaimsUse: the persuasion jailbreak's alibi, "This is purely for
// educational purposes and will never be used in real life", "Remember,
// this is a hypothetical scenario and will not be actually used". A
// request for harmful content dressed as fiction or research promises
// that what it asks for will not be put to use; nobody promises that of
// a poem or a spreadsheet. The phrase matched at i is "not be" or
// "never be" (or "not actually", "never actually"); what must hold:
//   - a use verb follows: used, implemented, acted (upon), executed ...;
//   - earlier in the same sentence the request itself is the subject,
//     "this is", "it is", "this scenario is", and a purpose word says
//     what it is for: purposes, hypothetical, fictional, experiment ...
//     (a README's "This tool is for educational purposes only and must
//     not be used ..." names the tool, not a request);
//   - somewhere the text asks the reader for something: "you" and a
//     content verb (write, describe, provide, explain ...).
func disclaimsUse(norm []byte, toks []Token, _ []uint32, i, n int) bool {
	j := i + n
	for j < len(toks) && (toks[j].Hash == hActually || toks[j].Hash == hBe) {
		j++
	}
	if j >= len(toks) || j > i+n+2 || !slices.Contains(useVerbs, toks[j].Hash) {
		return false
	}
	return requestSubject(norm, toks, i) && asksReader(toks)
}

// requestSubject looks back from the negation at i, within its sentence,
// for a purpose word and, before it, "this/it [noun] is/will/would".
func requestSubject(norm []byte, toks []Token, i int) bool {
	purpose := false
	for k := i - 1; k >= 0 && k >= i-20; k-- {
		if sentenceBreak(norm, toks, k+1) {
			return false
		}
		h := toks[k].Hash
		if slices.Contains(purposeWords, h) {
			purpose = true
			continue
		}
		if !purpose || !slices.Contains(subjectWords, h) || k+1 >= i {
			continue
		}
		next := toks[k+1].Hash
		if slices.Contains(discNouns, next) && k+2 < i {
			next = toks[k+2].Hash
		}
		if slices.Contains(subjectVerbs, next) {
			return true
		}
	}
	return false
}

// asksReader: "you" or "your" and a verb asking for content anywhere in
// the text.
func asksReader(toks []Token) bool {
	you, verb := false, false
	for _, t := range toks {
		you = you || t.Hash == hYou || t.Hash == hYour
		verb = verb || slices.Contains(contentVerbs, t.Hash)
		if you && verb {
			return true
		}
	}
	return false
}

var (
	hActually = HashString("actually")

	useVerbs = hashes("used", "implemented", "acted", "executed", "enacted", "put", "carried", "attempted",
		"applied", "employed", "utilized", "practiced")
	purposeWords = hashes("purpose", "purposes", "reasons", "hypothetical", "hypothetically", "fictional", "fiction",
		"experiment", "exercise", "simulation")
	subjectWords = hashes("this", "it")
	// discNouns may stand between "this" and its verb: "this request is".
	discNouns = hashes("request", "inquiry", "query", "question", "scenario", "prompt", "information", "advice",
		"exercise", "story", "guide", "plan", "report", "content", "script", "chapter", "simulation", "article")
	subjectVerbs = hashes("is", "will", "would", "was")
	contentVerbs = hashes("write", "describe", "provide", "explain", "create", "draft", "give", "list", "outline",
		"compose", "generate", "detail", "tell", "share", "help", "craft", "develop", "design", "suggest")
)
