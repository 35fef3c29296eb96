package api

import "strings"

// CombinedEventPrefix begins the message of an event that stands for many
// similar ones: once a recorder has seen ten different messages for the
// same object, source, type and reason within ten minutes, it sends the
// rest as one event with this prefix before the latest message, its count
// raised at every occurrence, as Kubernetes' event aggregator does
// (client-go's EventAggregator).
const CombinedEventPrefix = "(combined from similar events): "

// EventCorrelationMessage is the part of an event's message that tells
// occurrences apart when events are correlated: all of it, or, for a
// combined event, only CombinedEventPrefix, so that its occurrences are
// one event whatever their latest message.
func EventCorrelationMessage(msg string) string {
	if strings.HasPrefix(msg, CombinedEventPrefix) {
		return CombinedEventPrefix
	}
	return msg
}
