package ui

import (
	"net/url"

	"github.com/keygate/keygate/store"
)

// A listing's sortable columns. The query names a column (?sort=) and a
// direction (?dir=asc|desc); only the names a page lists are read, so a
// crafted value falls back to the default order and never reaches the
// store, which accepts its own whitelist of orders only.

// sortDef is one sortable column of a page.
type sortDef struct {
	name  string // the query value, e.g. "last_used"
	label string
	by    string // store.Order*
	desc  bool   // the direction a first click sorts in
}

// sortSet is a page's sortable columns and its default.
type sortSet struct {
	cols []sortDef
	def  sortChoice
}

// sortChoice is the order a page shows.
type sortChoice struct {
	name  string
	order store.Order
}

// sortCols are a page's sortable headers: By name for the table head,
// List in column order for the phone layout, where the head is hidden.
type sortCols struct {
	By   map[string]sortCol
	List []sortCol
}

// sortCol is a column header: a link that sorts by it (or reverses the
// current order), and the state screen readers announce.
type sortCol struct {
	Label string
	Href  string
	Aria  string // "ascending", "descending" or "" (not sorted by it)
	Arrow string
}

// choose reads ?sort= and ?dir= against the page's columns.
func (s sortSet) choose(q url.Values) sortChoice {
	name := q.Get("sort")
	for _, c := range s.cols {
		if c.name != name {
			continue
		}
		desc := c.desc
		switch q.Get("dir") {
		case "asc":
			desc = false
		case "desc":
			desc = true
		}
		return sortChoice{name: c.name, order: store.Order{By: c.by, Desc: desc}}
	}
	return s.def
}

// columns builds the headers: each links to its sort, keeping the
// filters and going back to page 1.
func (s sortSet) columns(path string, q url.Values, cur sortChoice) sortCols {
	out := sortCols{By: make(map[string]sortCol, len(s.cols))}
	for _, c := range s.cols {
		col := sortCol{Label: c.label}
		desc := c.desc
		if c.name == cur.name {
			col.Aria, col.Arrow = "ascending", "▲"
			if cur.order.Desc {
				col.Aria, col.Arrow = "descending", "▼"
			}
			desc = !cur.order.Desc
		}
		v := url.Values{}
		for k, vs := range q {
			if k != "page" && k != "sort" && k != "dir" {
				v[k] = vs
			}
		}
		v.Set("sort", c.name)
		v.Set("dir", "asc")
		if desc {
			v.Set("dir", "desc")
		}
		col.Href = path + "?" + v.Encode()
		out.By[c.name] = col
		out.List = append(out.List, col)
	}
	return out
}

// keySorts: key tables list the newest keys first unless asked otherwise.
func keySorts() sortSet {
	return sortSet{cols: []sortDef{
		{name: "name", label: "Name", by: store.OrderAlias},
		{name: "created", label: "Created", by: store.OrderCreated, desc: true},
		{name: "last_used", label: "Last used", by: store.OrderLastUsed, desc: true},
		{name: "spend", label: "Spend and budget", by: store.OrderSpend, desc: true},
	}, def: sortChoice{name: "created", order: store.Order{By: store.OrderCreated, Desc: true}}}
}

// userSorts: users stay in the order they were created unless asked.
func userSorts() sortSet {
	return sortSet{cols: []sortDef{
		{name: "email", label: "User", by: store.OrderEmail},
		{name: "role", label: "Role", by: store.OrderRole},
		{name: "created", label: "Created", by: store.OrderCreated, desc: true},
	}, def: sortChoice{name: "created", order: store.Order{By: store.OrderCreated}}}
}
