"""nodus timeline: events from every part of the store on one clock."""
